{{ config(materialized='external', location=mart_location('customer_features_weekly'),
          keep_file_if='feature_rows_unchanged') }}
-- depends_on: {{ ref('int_customer_feature_changes') }}

-- Readable specification: tests/data/oracle.py (plain pandas, one customer at a time); the
-- oracle tests (tests/data/test_feature_oracle.py, test_timelines.py) check every snapshot of
-- sampled customers against it.
--
-- One row per customer and weekly snapshot of its client's own timeline (int_client_timelines:
-- snapshots every 7 days back from the client's end, never past its watermark). A snapshot at time t only sees transaction
-- versions that had happened (transacted_at <= t) AND had arrived (loaded_at <= t) and were not
-- yet replaced by a correction (superseded_at > t): what we actually knew at t.
--
-- Cost is linear in versions + (customers x snapshots): each version is seen by one unbroken run
-- of snapshots per window (int_transactions_snapshot_intervals), so it adds +1 / +amount where
-- the run starts and -1 / -amount where it ends, and a running sum over each customer's
-- snapshots gives the window totals. Amounts are summed as integer nano-dollars, so that the
-- -amount cancels the +amount exactly. The two non-additive features are built from runs too:
--   category_count_90d: per (customer, category) the runs are merged into "bought in the last
--     90 days" (>= 1 version seen); the count changes by +1 / -1 where that flips.
--   last_purchase_at: for current versions (never superseded) the latest transacted_at among
--     the versions seen so far is the answer while it is in the 365-day window (if it has aged
--     out, every earlier one has too); superseded versions, a few, are expanded to their
--     snapshots and compared directly.

--
-- Incremental (DuckDB, `python -m parity build --incremental`; README "Incremental builds"): only
-- the rows int_customer_feature_changes names are computed -- per customer the snapshots at
-- weeks_before_end <= rebuild_week: all of a customer whose inputs changed, else the new grid
-- points -- and the previous build's other rows are kept. Changes at older weeks are folded
-- into week rebuild_week (a running sum from there on is the same), so the result equals a full
-- run's (tests/parity/ingest/test_incremental.py compares them). When this build computes no row
-- and keeps every previous one (most days: a day's drop crosses no grid point and arrives after
-- every old snapshot), the previous build's file is the result and is not written again
-- (keep_file_if, macros/materializations.sql).

{%- set incremental = incremental_mart_run() %}
{%- set windows = [30, 60, 90, 365] %}

{#- The transaction versions with their deltas, read afresh by each branch below instead of as a
    CTE: DuckDB materializes a CTE that is referenced more than once (9M rows at 10M and a scan of
    the copy per branch), while a subquery on the table scans only the columns and rows it needs. #}
{%- set intervals -%}
(
    select
        {%- if incremental %}
        intervals.* replace (
            least(intervals.entered_week, rebuilds.rebuild_week) as entered_week
            {%- for days in windows %},
            least(intervals.left_week_{{ days }}d, rebuilds.rebuild_week) as left_week_{{ days }}d
            {%- endfor %}
        ),
        {%- else %}
        *,
        {%- endif %}
        case when transaction_type = 'purchase' then 1 else 0 end as purchases,
        case when transaction_type = 'refund' then 1 else 0 end as refunds,
        -- in nano-dollars, an exact integer (amounts have far fewer than 9 decimals)
        case when transaction_type = 'purchase' then cast(round(amount_usd * 1000000000) as bigint) else 0 end as spend
    from {{ ref('int_transactions_snapshot_intervals') }}{% if incremental %} as intervals
    inner join {{ ref('int_customer_feature_changes') }} as rebuilds
        on rebuilds.customer_id = intervals.customer_id and rebuilds.rebuild_week >= 0{% endif %}
) as intervals
{%- endset %}

with customer_spans as (
    select * from {{ ref('int_customer_snapshot_spans') }}
),

{%- if incremental %}

rebuilds as (
    select * from {{ ref('int_customer_feature_changes') }}
),
{%- endif %}

snapshots as (
    select * from {{ ref('int_snapshots') }}
),

grid_weeks as (
    -- the week coordinates in use (each client's grid counts back from its own end, so a
    -- customer's weeks 0 .. first_week are all on its client's grid: first_week is clamped to it)
    select distinct weeks_before_end from snapshots
),

spine as (
    -- every customer at every snapshot from its first one (signed up and known) to its client's end
    select
        customer_spans.customer_key,
        grid_weeks.weeks_before_end
    from customer_spans
    {%- if incremental %}
    -- incremental: the snapshots this build computes
    inner join rebuilds on rebuilds.customer_id = customer_spans.customer_id
    inner join grid_weeks on grid_weeks.weeks_before_end <= rebuilds.rebuild_week
    {%- else %}
    inner join grid_weeks on grid_weeks.weeks_before_end <= customer_spans.first_week
    {%- endif %}
),

window_changes as (
    -- a version enters every window at once and leaves each at its own week (an empty run
    -- leaves where it entered, so the two cancel)
    select
        customer_key,
        entered_week as weeks_before_end,
        purchases as purchases_30d,
        purchases as purchases_60d,
        purchases as purchases_90d,
        purchases as purchases_365d,
        spend as spend_30d,
        spend as spend_90d,
        spend as spend_365d,
        refunds as refunds_90d,
        cast(null as bigint) as categories_90d,
        -- the latest purchase (current versions only) that a snapshot sees for the first time,
        -- on the entering row itself rather than a row of its own
        case when transaction_type = 'purchase' and not is_superseded then transacted_at end as current_purchase_at
    from {{ intervals }}
    union all
    select customer_key, left_week_30d, -purchases, null, null, null, -spend, null, null, null, null, null
    from {{ intervals }}
    where left_week_30d >= 0 and transaction_type = 'purchase'
    union all
    select customer_key, left_week_60d, null, -purchases, null, null, null, null, null, null, null, null
    from {{ intervals }}
    where left_week_60d >= 0 and transaction_type = 'purchase'
    union all
    select customer_key, left_week_90d, null, null, -purchases, null, null, -spend, null, -refunds, null, null
    from {{ intervals }}
    where left_week_90d >= 0
    union all
    select customer_key, left_week_365d, null, null, null, -purchases, null, null, -spend, null, null, null
    from {{ intervals }}
    where left_week_365d >= 0 and transaction_type = 'purchase'
),

category_runs as (
    -- +1 / -1 per version of a purchase in the category seen by a 90-day snapshot
    select customer_key, category, entered_week as weeks_before_end, 1 as change
    from {{ intervals }}
    where transaction_type = 'purchase' and category is not null and left_week_90d < entered_week
    union all
    select customer_key, category, left_week_90d, -1
    from {{ intervals }}
    where transaction_type = 'purchase' and category is not null and left_week_90d < entered_week
        and left_week_90d >= 0
),

category_run_changes as (
    select customer_key, category, weeks_before_end, sum(change) as change
    from category_runs
    group by customer_key, category, weeks_before_end
),

category_active as (
    select
        customer_key,
        category,
        weeks_before_end,
        change,
        sum(change) over (partition by customer_key, category order by weeks_before_end desc nulls last) as active_versions
    from category_run_changes
),

category_changes as (
    -- +1 where the category becomes present (>= 1 version seen), -1 where it stops being present
    select
        customer_key,
        weeks_before_end,
        case when active_versions > 0 then 1 else 0 end
            - case when active_versions - change > 0 then 1 else 0 end as categories_90d
    from category_active
),

superseded_purchases_seen as (
    -- superseded versions, a few: each with every snapshot of its 365-day run (folded into
    -- `changes`, so the 20M snapshot rows need no join of their own for it)
    select
        intervals.customer_key,
        grid_weeks.weeks_before_end,
        max(intervals.transacted_at) as transacted_at
    from {{ intervals }}
    inner join grid_weeks
        on grid_weeks.weeks_before_end <= intervals.entered_week
        and grid_weeks.weeks_before_end > intervals.left_week_365d
    where intervals.transaction_type = 'purchase' and intervals.is_superseded
    group by intervals.customer_key, grid_weeks.weeks_before_end
),

changes as (
    -- the six counts travel packed three to a bigint (macros/packed_counts.sql): the window and
    -- the aggregation cost per column, and a customer's count in a window stays far below 2^21
    select
        customer_key,
        weeks_before_end,
        cast(sum({{ pack_counts(['purchases_30d', 'purchases_60d', 'purchases_90d']) }}) as bigint) as purchase_counts_packed,
        cast(sum({{ pack_counts(['purchases_365d', 'refunds_90d', 'categories_90d']) }}) as bigint) as other_counts_packed,
        cast(sum(spend_30d) as bigint) as spend_30d,
        cast(sum(spend_90d) as bigint) as spend_90d,
        cast(sum(spend_365d) as bigint) as spend_365d,
        max(current_purchase_at) as current_purchase_at,
        -- not a running value: the latest superseded purchase seen at this very snapshot
        max(superseded_purchase_at) as superseded_purchase_at
    from (
        select *, null as superseded_purchase_at from window_changes
        union all
        select customer_key, weeks_before_end, null, null, null, null, null, null, null, null, categories_90d, null, null
        from category_changes
        where categories_90d != 0
        union all
        select customer_key, weeks_before_end, null, null, null, null, null, null, null, null, null, null, transacted_at
        from superseded_purchases_seen
    ) as all_changes
    group by customer_key, weeks_before_end
),

running as (
    -- running totals over each customer's snapshots, oldest first (the default frame: from the
    -- first snapshot up to this one, as weeks_before_end is unique per customer). A sum of bigints
    -- is a 128-bit integer on DuckDB; back to bigint (the totals fit) before the per-row unpacking
    -- and scaling, which cost ~3x as much on 128-bit values (12 s of CPU over 20M rows at 10M)
    select
        spine.customer_key,
        spine.weeks_before_end,
        cast(sum(changes.purchase_counts_packed) over customer_weeks as bigint) as purchase_counts_packed,
        cast(sum(changes.other_counts_packed) over customer_weeks as bigint) as other_counts_packed,
        cast(sum(changes.spend_30d) over customer_weeks as bigint) as spend_30d_nano,
        cast(sum(changes.spend_90d) over customer_weeks as bigint) as spend_90d_nano,
        cast(sum(changes.spend_365d) over customer_weeks as bigint) as spend_365d_nano,
        max(changes.current_purchase_at) over customer_weeks as latest_current_purchase_at,
        changes.superseded_purchase_at
    from spine
    left join changes
        on changes.customer_key = spine.customer_key
        and changes.weeks_before_end = spine.weeks_before_end
    window customer_weeks as (partition by spine.customer_key order by spine.weeks_before_end desc nulls last)
),

unpacked as (
    select
        customer_key,
        weeks_before_end,
        {{ unpack_count('purchase_counts_packed', 0) }} as purchase_count_30d,
        {{ unpack_count('purchase_counts_packed', 1) }} as purchase_count_60d,
        {{ unpack_count('purchase_counts_packed', 2) }} as purchase_count_90d,
        {{ unpack_count('other_counts_packed', 0) }} as purchase_count_365d,
        {{ unpack_count('other_counts_packed', 1) }} as refund_count_90d,
        {{ unpack_count('other_counts_packed', 2) }} as category_count_90d,
        spend_30d_nano,
        spend_90d_nano,
        spend_365d_nano,
        latest_current_purchase_at,
        superseded_purchase_at
    from running
),

aggregated as (
    select
        customer_spans.customer_id,
        customer_spans.client_id,
        customer_spans.country,
        customer_spans.acquisition_channel,
        customer_spans.birth_year,
        customer_spans.signed_up_at,
        snapshots.snapshot_at,
        unpacked.purchase_count_30d,
        -- purchases 31-60 days back: the 60-day window minus the 30-day one
        coalesce(unpacked.purchase_count_60d, 0) - coalesce(unpacked.purchase_count_30d, 0) as purchase_count_prior_30d,
        unpacked.purchase_count_90d,
        unpacked.purchase_count_365d,
        -- exact integer sums (< 2^53) to the nearest double
        cast(unpacked.spend_30d_nano as double) / 1000000000 as spend_30d,
        cast(unpacked.spend_90d_nano as double) / 1000000000 as spend_90d,
        cast(unpacked.spend_365d_nano as double) / 1000000000 as spend_365d,
        unpacked.refund_count_90d,
        unpacked.category_count_90d,
        greatest(
            case when unpacked.latest_current_purchase_at > snapshots.year_before_at
                then unpacked.latest_current_purchase_at end,
            unpacked.superseded_purchase_at
        ) as last_purchase_at
    from unpacked
    inner join customer_spans on customer_spans.customer_key = unpacked.customer_key
    inner join snapshots
        on snapshots.client_id = customer_spans.client_id
        and snapshots.weeks_before_end = unpacked.weeks_before_end
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
        cast(aggregated.spend_90d / nullif(aggregated.purchase_count_90d, 0) as double) as avg_basket_90d,
        cast(coalesce(aggregated.refund_count_90d, 0) as bigint) as refund_count_90d,
        cast(coalesce(aggregated.refund_count_90d, 0) / greatest(coalesce(aggregated.purchase_count_90d, 0), 1) as double)
            as refund_rate_90d,
        cast(coalesce(aggregated.category_count_90d, 0) as bigint) as category_count_90d,
        -- timestamps
        aggregated.last_purchase_at,
        aggregated.snapshot_at
    from aggregated
    {%- if incremental %}
    union all by name
    -- the previous build's rows this build does not compute: on the customer's spine, older than
    -- its rebuild_week (a customer without a spine now has none)
    select previous.*
    from {{ kept_feature_rows() }}
    {%- endif %}
)

select * from final
