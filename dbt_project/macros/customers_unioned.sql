{#- The body of int_customers_unioned (a view). `changed_only`: only the records of the customers an
    incremental run recomputes (int_customers_deduplicated and _duplicates read them so: a filter
    on the view is not pushed below its window, which then ranks every customer's records). -#}
{% macro customers_unioned(changed_only=false) %}
with

{% for client in var('clients') %}
{{ client }}_customers as (
    select * from {{ ref('stg_' ~ client ~ '__customers') }} as staged
    where quarantine_reason is null{% if changed_only %} and {{ only_changed_customer_records('staged') }}{% endif %}
),
{% endfor %}

unioned as (
    {% for client in var('clients') %}
    select
        client_id, customer_id, source_customer_id, email_hash, country, acquisition_channel,
        birth_year, signed_up_at, loaded_at
    from {{ client }}_customers
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        *,
        min(loaded_at) over (partition by customer_id) as first_loaded_at,
        cast(row_number() over (
            partition by customer_id
            order by loaded_at desc nulls last, signed_up_at nulls last, email_hash nulls last, country nulls last,
                acquisition_channel nulls last, birth_year nulls last
        ) as bigint) as record_rank
    from unioned
)

select * from final
{% endmacro %}
