{#- At least `at_least` (0..1) of the rows have a non-null value in the column. -#}
{% test not_null_proportion(model, column_name, at_least) %}
with counts as (
    select count({{ column_name }}) * 1.0 / nullif(count(*), 0) as proportion from {{ model }}
)
select * from counts where proportion is null or proportion < {{ at_least }}
{% endtest %}
