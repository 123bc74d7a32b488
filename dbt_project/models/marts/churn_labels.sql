{{ config(materialized='external', location=mart_location('churn_labels')) }}

-- Churn labels (see README "Churn definition"). At an as-of time t (every 4th weekly snapshot),
-- a customer who was active (>= 1 purchase in the 90 days before t, as known at t) is labelled
-- churned (1) when they make no purchase in (t, t + 60 days], else 0. A label is emitted only
-- when its whole future window is observed: t + 60 days <= the data's end.

with features as (
    select * from {{ ref('customer_features_weekly') }}
),

transactions as (
    -- current versions only: the outcome is judged on what we know now
    select * from {{ ref('int_transactions_versioned') }}
    where superseded_at is null and transaction_type = 'purchase'
),

bounds as (
    select max(snapshot_at) as observed_until from features
),

eligible as (
    select
        features.customer_id,
        features.client_id,
        features.snapshot_at as as_of_at,
        bounds.observed_until
    from features
    cross join bounds
    where features.purchase_count_90d >= 1
        and {{ days_between('features.snapshot_at', 'bounds.observed_until') }} >= {{ var('churn_horizon_days') }}
        and mod({{ days_between('features.snapshot_at', 'bounds.observed_until') }} / 7, {{ var('label_every_n_snapshots') }}) = 0
),

future_purchases as (
    select
        eligible.customer_id,
        eligible.as_of_at,
        count(transactions.transaction_id) as purchase_count
    from eligible
    left join transactions
        on transactions.customer_id = eligible.customer_id
        and transactions.transacted_at > eligible.as_of_at
        and transactions.transacted_at <= {{ add_days('eligible.as_of_at', var('churn_horizon_days')) }}
    group by eligible.customer_id, eligible.as_of_at
),

final as (
    select
        -- ids
        eligible.customer_id,
        eligible.client_id,
        -- numerics
        cast(case when future_purchases.purchase_count = 0 then 1 else 0 end as bigint) as is_churned,
        -- timestamps
        eligible.as_of_at,
        {{ add_days('eligible.as_of_at', var('churn_horizon_days')) }} as label_window_end_at
    from eligible
    inner join future_purchases
        on future_purchases.customer_id = eligible.customer_id
        and future_purchases.as_of_at = eligible.as_of_at
)

select * from final
