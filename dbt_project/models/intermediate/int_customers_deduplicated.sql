-- Canonical customers: one row per customer (the most recently arrived record).
-- Incremental (DuckDB, README "Incremental builds"): only the customers whose records may have
-- changed are computed again (macros/incremental.sql: customer_records_materialization); its hooks
-- record the customers who became known or unknown (int_transactions_versioned versions their
-- transactions again).
{{ config(**customer_records_materialization()) }}
{%- for client in var('clients') %}
-- depends_on: {{ ref('stg_' ~ client ~ '__customers') }}
{%- endfor %}
with customers as (
    {%- if execute and incremental_run() %}
    select * from ({{ customers_unioned(changed_only=true) }}) as customers
    {%- else %}
    select * from {{ ref('int_customers_unioned') }}
    {%- endif %}
),

final as (
    select
        -- ids
        customer_id,
        client_id,
        source_customer_id,
        -- strings
        email_hash,
        country,
        acquisition_channel,
        -- numerics
        birth_year,
        -- timestamps
        signed_up_at,
        first_loaded_at,
        loaded_at
    from customers
    where record_rank = 1
)

select * from final
