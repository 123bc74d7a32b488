-- Canonical customers: one row per customer (the most recently arrived record).
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
