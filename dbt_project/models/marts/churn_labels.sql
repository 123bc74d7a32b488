{{ config(materialized='external', location=mart_location('churn_labels')) }}

-- Churn labels (see README "Churn definition"). At an as-of time t (every 4th point of the fixed
-- weekly grid, counted from vars.snapshot_anchor, on the customer's client's own timeline), a customer who was active
-- (>= 1 purchase in the 90 days before t, as known at t) is labelled churned (1) when they make
-- no purchase in (t, t + 60 days], else 0. A label is emitted only when its whole future window
-- is observed: t + 60 days <= the client's own watermark (int_client_timelines).
--
-- Incremental (DuckDB, `python -m parity build --incremental`; README "Incremental builds"): a
-- customer's labels change only when its feature rows or purchases do (int_customer_feature_changes
-- recomputes it whole: change_reason) or when its client's watermark moves past the end of a label
-- window (the as-of times whose window became -- or stopped being -- observed, for every customer of
-- the client). Those labels are computed; the previous build's others are kept, except labels at
-- as-of times no longer on the client's grid.
-- depends_on: {{ ref('int_customer_feature_changes') }}
{%- set incremental = incremental_mart_run() %}

with
{%- if incremental %}

changes as (
    select * from {{ ref('int_customer_feature_changes') }}
),

recomputed as (
    select customer_id from changes where change_reason is not null
),

moved_windows as (
    -- per client: the watermarks of this run and the previous one (none: every as-of time moved)
    select
        client_id,
        max(watermark_at) as watermark_at,
        max(previous_watermark_at) as previous_watermark_at,
        min(first_snapshot_at) as first_snapshot_at,
        max(snapshot_end) as snapshot_end
    from changes
    where client_id is not null
    group by client_id
),

{%- endif %}

snapshots as (
    select * from {{ ref('int_snapshots') }}
),

timelines as (
    select * from {{ ref('int_client_timelines') }}
),

label_times as (
    select client_id, snapshot_at as as_of_at, weeks_before_end
    from snapshots
    where mod(grid_week, {{ var('label_every_n_snapshots') }}) = 0
),

{%- if incremental %}

moved_label_times as (
    -- the as-of times whose window the watermark moved past (most days none): found on the few
    -- label times, then joined by equality, so the large tables are not scanned when there are none
    select label_times.client_id, label_times.as_of_at
    from label_times
    inner join moved_windows on moved_windows.client_id = label_times.client_id
    where {{ churn_window_moved('label_times.as_of_at', 'moved_windows') }}
),

{%- endif %}

features as (
    {%- if incremental %}
    -- (joins, not correlated EXISTS: DuckDB plans those as much slower delim joins)
    select features.* from {{ ref('customer_features_weekly') }} as features
    where features.customer_id in (select customer_id from recomputed)
    union all
    select features.* from {{ ref('customer_features_weekly') }} as features
    inner join moved_label_times
        on moved_label_times.client_id = features.client_id
        and moved_label_times.as_of_at = features.snapshot_at
    where features.customer_id not in (select customer_id from recomputed)
    {%- else %}
    select * from {{ ref('customer_features_weekly') }}
    {%- endif %}
),

transactions as (
    -- current versions only: the outcome is judged on what we know now
    select * from {{ ref('int_transactions_versioned') }}
    where superseded_at is null and transaction_type = 'purchase'
    {%- if incremental %}
        -- the purchases the computed labels read: the recomputed customers', and those that can fall
        -- in the window (t, t + horizon] of an as-of time t whose window moved (after the first such t)
        and customer_id in (select customer_id from recomputed)
    union all
    select versions.* from {{ ref('int_transactions_versioned') }} as versions
    inner join (
        select client_id, min(as_of_at) as first_as_of_at from moved_label_times group by client_id
    ) as moved on moved.client_id = versions.client_id and versions.transacted_at > moved.first_as_of_at
    where versions.superseded_at is null and versions.transaction_type = 'purchase'
        and versions.customer_id not in (select customer_id from recomputed)
    {%- endif %}
),

eligible as (
    select
        features.customer_id,
        features.client_id,
        features.snapshot_at as as_of_at
    from features
    inner join timelines on timelines.client_id = features.client_id
    -- the churn population: its one home is var('churn_activity_days') (parity.config reads it too)
    where features.purchase_count_{{ var('churn_activity_days') }}d >= 1
        -- snapshots are at midnight, so whole days to the watermark = the observed future
        and {{ days_between('features.snapshot_at', 'timelines.watermark_at') }} >= {{ var('churn_horizon_days') }}
        and mod({{ grid_week('features.snapshot_at') }}, {{ var('label_every_n_snapshots') }}) = 0
),

purchase_spans as (
    -- a purchase falls in the outcome window (t, t + horizon] of the snapshots t with
    -- transacted_at - horizon <= t < transacted_at: a run of at most horizon / 7 + 1 weeks of its
    -- client's grid, counted per customer and run so each purchase meets only its own few label times
    select
        transactions.client_id,
        transactions.customer_id,
        {{ floor_weeks_between('transactions.transacted_at', 'timelines.snapshot_end') }} + 1 as first_week,
        -- the weeks from (transacted_at - horizon) to the end = from transacted_at to end + horizon
        -- (the end moved once per client, not every purchase: date arithmetic per row was most of this)
        {{ floor_weeks_between('transactions.transacted_at', 'timelines.horizon_after_end') }} as last_week,
        count(*) as purchase_count
    from transactions
    inner join (
        select client_id, snapshot_end, {{ add_days('snapshot_end', var('churn_horizon_days')) }} as horizon_after_end
        from timelines
    ) as timelines on timelines.client_id = transactions.client_id
    group by 1, 2, 3, 4
),

future_purchases as (
    select
        purchase_spans.customer_id,
        label_times.as_of_at,
        sum(purchase_spans.purchase_count) as purchase_count
    from purchase_spans
    inner join label_times
        on label_times.client_id = purchase_spans.client_id
        and label_times.weeks_before_end >= purchase_spans.first_week
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
    {%- if incremental %}
    union all
    -- the previous build's labels not computed here, at as-of times still on the client's grid
    select previous.customer_id, previous.client_id, previous.is_churned, previous.as_of_at, previous.label_window_end_at
    from {{ this }} as previous
    inner join moved_windows on moved_windows.client_id = previous.client_id
    -- not at an as-of time whose window moved (the label times still on the grid are label_times)
    left join moved_label_times
        on moved_label_times.client_id = previous.client_id and moved_label_times.as_of_at = previous.as_of_at
    where previous.customer_id not in (select customer_id from recomputed)
        and moved_label_times.as_of_at is null
        and previous.as_of_at >= moved_windows.first_snapshot_at
        and previous.as_of_at <= moved_windows.snapshot_end
    {%- endif %}
)

select * from final
