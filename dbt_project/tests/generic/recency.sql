{#- The newest value of `field` is no older than `interval` `datepart`s before `reference`
    (a timestamp expression; default: the newest value of `reference_field` in `reference_model`,
    else now()). Used to catch stale marts. -#}
{% test recency(model, field, datepart, interval, reference=none) %}
with newest as (
    select max({{ field }}) as newest_at from {{ model }}
)
select *
from newest
where newest_at is null
   or newest_at < {{ reference if reference else 'now()' }} - interval '{{ interval }} {{ datepart }}'
{% endtest %}
