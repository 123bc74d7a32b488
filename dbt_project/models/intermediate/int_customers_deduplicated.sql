-- Canonical customers: one row per customer (the most recently arrived record).
-- On an incremental build its hooks record the customers who became known or unknown
-- (int_transactions_versioned versions their transactions again: macros/incremental.sql).
{{ config(pre_hook="{{ record_known_customers('old') }}", post_hook="{{ record_known_customers('new') }}") }}
with customers as (
    select * from {{ ref('int_customers_unioned') }}
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
