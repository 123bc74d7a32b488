{{ config(materialized='external', location=mart_location('customer_features_weekly')) }}

-- One row per customer and weekly snapshot. A snapshot at time t only sees transaction
-- versions that had happened (transacted_at <= t) AND had arrived (loaded_at <= t) and were not
-- yet replaced by a correction (superseded_at > t): what we actually knew at t.

with customers as (
    select * from {{ ref('int_customers_deduplicated') }}
),

transactions as (
    select * from {{ ref('int_transactions_versioned') }}
),

bounds as (
    -- the data's "now": midnight after the newest arrival of any client
    select {{ next_midnight('max(loaded_at)') }} as snapshot_end from transactions
),

week_numbers as (
    {{ integer_series(var('snapshot_weeks')) }}
),

snapshot_times as (
    select
        {{ add_days('bounds.snapshot_end', '-7 * week_numbers.i') }} as snapshot_at,
        week_numbers.i as weeks_before_end
    from bounds
    cross join week_numbers
),

spine as (
    select
        customers.customer_id,
        customers.client_id,
        customers.country,
        customers.acquisition_channel,
        customers.birth_year,
        customers.signed_up_at,
        snapshot_times.snapshot_at,
        snapshot_times.weeks_before_end
    from customers
    inner join snapshot_times
        on snapshot_times.snapshot_at >= customers.signed_up_at
        and snapshot_times.snapshot_at >= customers.first_loaded_at
),

known_transactions as (
    select
        spine.customer_id,
        spine.snapshot_at,
        transactions.transaction_type,
        transactions.category,
        transactions.amount_usd,
        transactions.transacted_at,
        transactions.transacted_at > {{ add_days('spine.snapshot_at', -30) }} as is_in_30d,
        transactions.transacted_at > {{ add_days('spine.snapshot_at', -60) }}
            and transactions.transacted_at <= {{ add_days('spine.snapshot_at', -30) }} as is_in_prior_30d,
        transactions.transacted_at > {{ add_days('spine.snapshot_at', -90) }} as is_in_90d
    from spine
    inner join transactions
        on transactions.customer_id = spine.customer_id
        and transactions.transacted_at <= spine.snapshot_at
        and transactions.transacted_at > {{ add_days('spine.snapshot_at', -365) }}
        and transactions.loaded_at <= spine.snapshot_at
        and (transactions.superseded_at is null or transactions.superseded_at > spine.snapshot_at)
),

aggregated as (
    select
        customer_id,
        snapshot_at,
        sum(case when transaction_type = 'purchase' and is_in_30d then 1 else 0 end) as purchase_count_30d,
        sum(case when transaction_type = 'purchase' and is_in_prior_30d then 1 else 0 end) as purchase_count_prior_30d,
        sum(case when transaction_type = 'purchase' and is_in_90d then 1 else 0 end) as purchase_count_90d,
        sum(case when transaction_type = 'purchase' then 1 else 0 end) as purchase_count_365d,
        sum(case when transaction_type = 'purchase' and is_in_30d then amount_usd else 0 end) as spend_30d,
        sum(case when transaction_type = 'purchase' and is_in_90d then amount_usd else 0 end) as spend_90d,
        sum(case when transaction_type = 'purchase' then amount_usd else 0 end) as spend_365d,
        sum(case when transaction_type = 'refund' and is_in_90d then 1 else 0 end) as refund_count_90d,
        count(distinct case when transaction_type = 'purchase' and is_in_90d then category end) as category_count_90d,
        max(case when transaction_type = 'purchase' then transacted_at end) as last_purchase_at
    from known_transactions
    group by customer_id, snapshot_at
),

final as (
    select
        -- ids
        spine.customer_id,
        spine.client_id,
        -- strings
        spine.country,
        spine.acquisition_channel,
        -- numerics
        cast(spine.birth_year as bigint) as birth_year,
        {{ days_between('spine.signed_up_at', 'spine.snapshot_at') }} as tenure_days,
        cast(coalesce(aggregated.purchase_count_30d, 0) as bigint) as purchase_count_30d,
        cast(coalesce(aggregated.purchase_count_90d, 0) as bigint) as purchase_count_90d,
        cast(coalesce(aggregated.purchase_count_365d, 0) as bigint) as purchase_count_365d,
        cast(coalesce(aggregated.purchase_count_30d, 0) - coalesce(aggregated.purchase_count_prior_30d, 0) as bigint)
            as purchase_trend_30d,
        cast(coalesce(aggregated.spend_30d, 0) as double) as spend_30d,
        cast(coalesce(aggregated.spend_90d, 0) as double) as spend_90d,
        cast(coalesce(aggregated.spend_365d, 0) as double) as spend_365d,
        cast(aggregated.spend_90d / nullif(aggregated.purchase_count_90d, 0) as double) as avg_basket_90d,
        cast(coalesce(aggregated.refund_count_90d, 0) as bigint) as refund_count_90d,
        cast(coalesce(aggregated.refund_count_90d, 0) / greatest(coalesce(aggregated.purchase_count_90d, 0), 1) as double)
            as refund_rate_90d,
        cast(coalesce(aggregated.category_count_90d, 0) as bigint) as category_count_90d,
        -- timestamps
        aggregated.last_purchase_at,
        spine.snapshot_at
    from spine
    left join aggregated
        on aggregated.customer_id = spine.customer_id
        and aggregated.snapshot_at = spine.snapshot_at
)

select * from final
