-- Canonical transactions, bitemporal: every version of every transaction with the time it
-- became known (loaded_at) and the time a correction replaced it (superseded_at, NULL while
-- current). "What did we know at time t" = versions with loaded_at <= t < superseded_at.
{{ config(**keyed_materialization('versioned')) }}
-- Incremental (DuckDB, README "Incremental builds"): only the keys int_transactions_unioned
-- recomputed and those of customers who became known or unknown (macros/incremental.sql:
-- versioned_changed_keys) are versioned again, from their records set aside by a pre-hook
-- (changed_records); every other row is kept.
with transactions as (
    select unioned.* from {{ changed_records(ref('int_transactions_unioned')) }} as unioned
    where unioned.duplicate_rank = 1
),

customers as (
    select customer_id from {{ ref('int_customers_deduplicated') }}
),

known as (
    select transactions.*
    from transactions
    inner join customers on transactions.customer_id = customers.customer_id
),

final as (
    select
        -- ids
        client_id,
        transaction_id,
        customer_id,
        -- strings
        transaction_type,
        category,
        currency,
        -- numerics
        amount_local,
        amount_usd,
        cast(row_number() over (partition by client_id, transaction_id order by loaded_at nulls last) as bigint) as version_number,
        -- booleans
        row_number() over (partition by client_id, transaction_id order by loaded_at nulls last) > 1 as is_correction,
        -- timestamps
        transacted_at,
        loaded_at,
        lead(loaded_at) over (partition by client_id, transaction_id order by loaded_at nulls last) as superseded_at
    from known
)

select * from final
