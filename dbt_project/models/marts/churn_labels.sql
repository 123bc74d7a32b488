{{ config(materialized='external', location=mart_location('churn_labels')) }}

-- Churn labels (see README "Churn definition"). At an as-of time t (every 4th weekly snapshot),
-- a customer who was active (>= 1 purchase in the 90 days before t, as known at t) is labelled
-- churned (1) when they make no purchase in (t, t + 60 days], else 0. A label is emitted only
-- when its whole future window is observed: t + 60 days <= the data's end.

with features as (
    select * from {{ ref('customer_features_weekly') }}
),

snapshots as (
    select * from {{ ref('int_snapshots') }}
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

label_times as (
    select snapshot_at as as_of_at, weeks_before_end
    from snapshots
    where mod(weeks_before_end, {{ var('label_every_n_snapshots') }}) = 0
),

purchase_spans as (
    -- a purchase falls in the outcome window (t, t + horizon] of the snapshots t with
    -- transacted_at - horizon <= t < transacted_at: a run of at most horizon / 7 + 1 weeks,
    -- counted per customer and run so each purchase meets only its own few label times
    select
        customer_id,
        {{ floor_weeks_between('transacted_at', 'snapshot_end') }} + 1 as first_week,
        {{ floor_weeks_between(add_days('transacted_at', -var('churn_horizon_days')), 'snapshot_end') }} as last_week,
        count(*) as purchase_count
    from transactions
    cross join (select max(snapshot_end) as snapshot_end from snapshots) as bounds
    group by 1, 2, 3
),

future_purchases as (
    select
        purchase_spans.customer_id,
        label_times.as_of_at,
        sum(purchase_spans.purchase_count) as purchase_count
    from purchase_spans
    inner join label_times
        on label_times.weeks_before_end >= purchase_spans.first_week
        and label_times.weeks_before_end <= purchase_spans.last_week
    group by purchase_spans.customer_id, label_times.as_of_at
),

final as (
    select
        -- ids
        eligible.customer_id,
        eligible.client_id,
        -- numerics
        cast(case when coalesce(future_purchases.purchase_count, 0) = 0 then 1 else 0 end as bigint) as is_churned,
        -- timestamps
        eligible.as_of_at,
        {{ add_days('eligible.as_of_at', var('churn_horizon_days')) }} as label_window_end_at
    from eligible
    left join future_purchases
        on future_purchases.customer_id = eligible.customer_id
        and future_purchases.as_of_at = eligible.as_of_at
)

select * from final
