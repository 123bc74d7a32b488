{{ config(materialized='external', location=mart_location('customer_features_weekly')) }}

-- One row per customer and weekly snapshot. A snapshot at time t only sees transaction
-- versions that had happened (transacted_at <= t) AND had arrived (loaded_at <= t) and were not
-- yet replaced by a correction (superseded_at > t): what we actually knew at t.
--
-- Cost is linear in versions + (customers x snapshots): each version is seen by one unbroken run
-- of snapshots per window (int_transactions_snapshot_intervals), so it adds +1 / +amount where
-- the run starts and -1 / -amount where it ends, and a running sum over each customer's
-- snapshots gives the window totals. Amounts are summed as decimals so that the -amount cancels
-- the +amount exactly. The two non-additive features are built from runs too:
--   category_count_90d: per (customer, category) the runs are merged into "bought in the last
--     90 days" (>= 1 version seen); the count changes by +1 / -1 where that flips.
--   last_purchase_at: for current versions (never superseded) the latest transacted_at among
--     the versions seen so far is the answer while it is in the 365-day window (if it has aged
--     out, every earlier one has too); superseded versions, a few, are expanded to their
--     snapshots and compared directly.

with customers as (
    select * from {{ ref('int_customers_deduplicated') }}
),

snapshots as (
    select * from {{ ref('int_snapshots') }}
),

intervals as (
    select
        *,
        case when transaction_type = 'purchase' then 1 else 0 end as purchases,
        case when transaction_type = 'refund' then 1 else 0 end as refunds,
        case when transaction_type = 'purchase' then cast(amount_usd as decimal(38, 9)) else 0 end as spend
    from {{ ref('int_transactions_snapshot_intervals') }}
),

spine as (
    select
        customers.customer_id,
        customers.client_id,
        customers.country,
        customers.acquisition_channel,
        customers.birth_year,
        customers.signed_up_at,
        snapshots.snapshot_at,
        snapshots.weeks_before_end
    from customers
    inner join snapshots
        on snapshots.snapshot_at >= customers.signed_up_at
        and snapshots.snapshot_at >= customers.first_loaded_at
),

window_changes as (
    -- a version enters every window at once and leaves each at its own week (an empty run
    -- leaves where it entered, so the two cancel)
    select
        customer_id,
        entered_week as weeks_before_end,
        purchases as purchases_30d,
        purchases as purchases_60d,
        purchases as purchases_90d,
        purchases as purchases_365d,
        spend as spend_30d,
        spend as spend_90d,
        spend as spend_365d,
        refunds as refunds_90d,
        cast(null as bigint) as categories_90d
    from intervals
    union all
    select customer_id, left_week_30d, -purchases, null, null, null, -spend, null, null, null, null
    from intervals
    where left_week_30d >= 0 and transaction_type = 'purchase'
    union all
    select customer_id, left_week_60d, null, -purchases, null, null, null, null, null, null, null
    from intervals
    where left_week_60d >= 0 and transaction_type = 'purchase'
    union all
    select customer_id, left_week_90d, null, null, -purchases, null, null, -spend, null, -refunds, null
    from intervals
    where left_week_90d >= 0
    union all
    select customer_id, left_week_365d, null, null, null, -purchases, null, null, -spend, null, null
    from intervals
    where left_week_365d >= 0 and transaction_type = 'purchase'
),

category_runs as (
    -- +1 / -1 per version of a purchase in the category seen by a 90-day snapshot
    select customer_id, category, entered_week as weeks_before_end, 1 as change
    from intervals
    where transaction_type = 'purchase' and category is not null and left_week_90d < entered_week
    union all
    select customer_id, category, left_week_90d, -1
    from intervals
    where transaction_type = 'purchase' and category is not null and left_week_90d < entered_week
        and left_week_90d >= 0
),

category_run_changes as (
    select customer_id, category, weeks_before_end, sum(change) as change
    from category_runs
    group by customer_id, category, weeks_before_end
),

category_presence as (
    select
        customer_id,
        category,
        weeks_before_end,
        case when sum(change) over (
            partition by customer_id, category order by weeks_before_end desc
        ) > 0 then 1 else 0 end as is_present
    from category_run_changes
),

category_changes as (
    select
        customer_id,
        weeks_before_end,
        is_present - coalesce(lag(is_present) over (
            partition by customer_id, category order by weeks_before_end desc
        ), 0) as categories_90d
    from category_presence
),

current_purchase_changes as (
    -- the latest purchase (current versions only) that a snapshot sees for the first time
    select customer_id, entered_week as weeks_before_end, transacted_at
    from intervals
    where transaction_type = 'purchase' and not is_superseded
),

changes as (
    select
        customer_id,
        weeks_before_end,
        sum(purchases_30d) as purchases_30d,
        sum(purchases_60d) as purchases_60d,
        sum(purchases_90d) as purchases_90d,
        sum(purchases_365d) as purchases_365d,
        sum(spend_30d) as spend_30d,
        sum(spend_90d) as spend_90d,
        sum(spend_365d) as spend_365d,
        sum(refunds_90d) as refunds_90d,
        sum(categories_90d) as categories_90d,
        max(current_purchase_at) as current_purchase_at
    from (
        select *, null as current_purchase_at from window_changes
        union all
        select customer_id, weeks_before_end, null, null, null, null, null, null, null, null, categories_90d, null
        from category_changes
        where categories_90d != 0
        union all
        select customer_id, weeks_before_end, null, null, null, null, null, null, null, null, null, transacted_at
        from current_purchase_changes
    ) as all_changes
    group by customer_id, weeks_before_end
),

superseded_purchases_seen as (
    select
        intervals.customer_id,
        snapshots.weeks_before_end,
        max(intervals.transacted_at) as transacted_at
    from intervals
    inner join snapshots
        on snapshots.weeks_before_end <= intervals.entered_week
        and snapshots.weeks_before_end > intervals.left_week_365d
    where intervals.transaction_type = 'purchase' and intervals.is_superseded
    group by intervals.customer_id, snapshots.weeks_before_end
),

running as (
    -- running totals over each customer's snapshots, oldest first (the default frame: from the
    -- first snapshot up to this one, as weeks_before_end is unique per customer)
    select
        spine.*,
        sum(changes.purchases_30d) over customer_weeks as purchase_count_30d,
        sum(changes.purchases_60d) over customer_weeks as purchase_count_60d,
        sum(changes.purchases_90d) over customer_weeks as purchase_count_90d,
        sum(changes.purchases_365d) over customer_weeks as purchase_count_365d,
        sum(changes.spend_30d) over customer_weeks as spend_30d,
        sum(changes.spend_90d) over customer_weeks as spend_90d,
        sum(changes.spend_365d) over customer_weeks as spend_365d,
        sum(changes.refunds_90d) over customer_weeks as refund_count_90d,
        sum(changes.categories_90d) over customer_weeks as category_count_90d,
        max(changes.current_purchase_at) over customer_weeks as latest_current_purchase_at
    from spine
    left join changes
        on changes.customer_id = spine.customer_id
        and changes.weeks_before_end = spine.weeks_before_end
    window customer_weeks as (partition by spine.customer_id order by spine.weeks_before_end desc)
),

aggregated as (
    select
        running.*,
        -- purchases 31-60 days back: the 60-day window minus the 30-day one
        coalesce(running.purchase_count_60d, 0) - coalesce(running.purchase_count_30d, 0) as purchase_count_prior_30d,
        greatest(
            case when running.latest_current_purchase_at > {{ add_days('running.snapshot_at', -365) }}
                then running.latest_current_purchase_at end,
            superseded_purchases_seen.transacted_at
        ) as last_purchase_at
    from running
    left join superseded_purchases_seen
        on superseded_purchases_seen.customer_id = running.customer_id
        and superseded_purchases_seen.weeks_before_end = running.weeks_before_end
),

final as (
    select
        -- ids
        aggregated.customer_id,
        aggregated.client_id,
        -- strings
        aggregated.country,
        aggregated.acquisition_channel,
        -- numerics
        cast(aggregated.birth_year as bigint) as birth_year,
        {{ days_between('aggregated.signed_up_at', 'aggregated.snapshot_at') }} as tenure_days,
        cast(coalesce(aggregated.purchase_count_30d, 0) as bigint) as purchase_count_30d,
        cast(coalesce(aggregated.purchase_count_90d, 0) as bigint) as purchase_count_90d,
        cast(coalesce(aggregated.purchase_count_365d, 0) as bigint) as purchase_count_365d,
        cast(coalesce(aggregated.purchase_count_30d, 0) - coalesce(aggregated.purchase_count_prior_30d, 0) as bigint)
            as purchase_trend_30d,
        cast(coalesce(aggregated.spend_30d, 0) as double) as spend_30d,
        cast(coalesce(aggregated.spend_90d, 0) as double) as spend_90d,
        cast(coalesce(aggregated.spend_365d, 0) as double) as spend_365d,
        cast(cast(aggregated.spend_90d as double) / nullif(aggregated.purchase_count_90d, 0) as double) as avg_basket_90d,
        cast(coalesce(aggregated.refund_count_90d, 0) as bigint) as refund_count_90d,
        cast(coalesce(aggregated.refund_count_90d, 0) / greatest(coalesce(aggregated.purchase_count_90d, 0), 1) as double)
            as refund_rate_90d,
        cast(coalesce(aggregated.category_count_90d, 0) as bigint) as category_count_90d,
        -- timestamps
        aggregated.last_purchase_at,
        aggregated.snapshot_at
    from aggregated
)

select * from final
