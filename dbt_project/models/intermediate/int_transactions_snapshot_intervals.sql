-- Every transaction version with the run of weekly snapshots that see it, in grid coordinates
-- (weeks_before_end on its client's own grid, see int_snapshots and int_client_timelines).
-- A snapshot at t sees a version in an N-day window iff
--   transacted_at <= t, loaded_at <= t, (superseded_at is null or superseded_at > t)
--   and transacted_at > t - N days,
-- i.e. iff greatest(transacted_at, loaded_at) <= t < least(superseded_at, transacted_at + N days).
-- On the grid: left_week_<N>d < weeks_before_end <= entered_week. Both ends are clamped to the
-- customer's spine (the snapshots at which the customer exists), so a version that became
-- visible before the spine starts counts from its first snapshot, and an empty run has
-- left_week = entered_week. Versions that no snapshot of the spine sees are dropped.

{%- set windows = [30, 60, 90, 365] %}
{%- set day_us = 86400000000 %}
{%- set week_us = 7 * day_us %}

{{ config(**customer_keyed_materialization()) }}
-- Incremental (DuckDB, README "Incremental builds"): only the customers whose inputs or client grid
-- changed (macros/incremental.sql: record_changed_customers) are computed again; every other
-- customer's rows are kept (their customer_key is a function of the id: int_customer_snapshot_spans).
-- depends_on: {{ ref('int_customer_feature_changes') }}
with transactions as (
    select * from {{ ref('int_transactions_versioned') }} as versions
    where {{ only_changed_customers('versions') }}
),

customer_spans as (
    select * from {{ ref('int_customer_snapshot_spans') }}
),

timelines as (
    -- each client's grid end: the week coordinates are relative to it
    select client_id, snapshot_end from {{ ref('int_client_timelines') }}
),

visibility as (
    -- in epoch microseconds (UTC: a day is exactly 86400 s), plain integer arithmetic
    select
        transactions.client_id,
        transactions.transaction_id,
        transactions.customer_id,
        customer_spans.customer_key,
        transactions.transaction_type,
        transactions.category,
        transactions.amount_usd,
        transactions.version_number,
        transactions.superseded_at,
        transactions.transacted_at,
        customer_spans.first_week,
        {{ epoch_microseconds('timelines.snapshot_end') }} as snapshot_end_us,
        greatest({{ epoch_microseconds('transactions.transacted_at') }}, {{ epoch_microseconds('transactions.loaded_at') }})
            as visible_from_us,
        {%- for days in windows %}
        least(
            coalesce({{ epoch_microseconds('transactions.superseded_at') }}, {{ epoch_microseconds('transactions.transacted_at') }} + {{ days * day_us }}),
            {{ epoch_microseconds('transactions.transacted_at') }} + {{ days * day_us }}
        ) as visible_until_{{ days }}d_us{% if not loop.last %},{% endif %}
        {%- endfor %}
    from transactions
    inner join customer_spans on customer_spans.customer_id = transactions.customer_id
    inner join timelines on timelines.client_id = customer_spans.client_id
),

weeks as (
    -- weeks_before_end of the first snapshot at or after each bound
    select
        *,
        {%- for days in windows %}
        cast(floor((snapshot_end_us - visible_until_{{ days }}d_us) / {{ week_us }}.0) as bigint) as until_week_{{ days }}d,
        {%- endfor %}
        cast(floor((snapshot_end_us - visible_from_us) / {{ week_us }}.0) as bigint) as from_week
    from visibility
),

clamped as (
    select
        *,
        least(from_week, first_week) as entered_week
    from weeks
    -- visible by the client's end (its watermark): later versions are not seen by any snapshot
    where from_week >= 0
),

final as (
    select
        -- ids
        client_id,
        transaction_id,
        customer_id,
        customer_key,
        -- strings
        transaction_type,
        category,
        -- numerics
        amount_usd,
        version_number,
        entered_week,
        {%- for days in windows %}
        least(until_week_{{ days }}d, entered_week) as left_week_{{ days }}d,
        {%- endfor %}
        -- booleans
        superseded_at is not null as is_superseded,
        -- timestamps
        transacted_at
    from clamped
    -- the 365-day run is the longest: when it is empty, no window sees the version
    where until_week_365d < entered_week
)

select * from final
