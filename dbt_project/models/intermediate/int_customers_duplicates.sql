-- Customer records removed by deduplication (kept here so nothing is lost silently).
-- Incremental (DuckDB): only the customers int_customers_deduplicated recomputed (macros/incremental.sql).
{{ config(**customer_records_materialization()) }}
-- depends_on: {{ ref('int_customers_deduplicated') }}
{%- for client in var('clients') %}
-- depends_on: {{ ref('stg_' ~ client ~ '__customers') }}
{%- endfor %}
with customers as (
    {%- if execute and incremental_run() %}
    select * from ({{ customers_unioned(changed_only=true) }}) as customers
    {%- else %}
    select * from {{ ref('int_customers_unioned') }}
    {%- endif %}
)

select * from customers where record_rank > 1
