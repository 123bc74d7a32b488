-- Every transaction version with the run of weekly snapshots that see it, in grid coordinates
-- (weeks_before_end, see int_snapshots). A snapshot at t sees a version in an N-day window iff
--   transacted_at <= t, loaded_at <= t, (superseded_at is null or superseded_at > t)
--   and transacted_at > t - N days,
-- i.e. iff greatest(transacted_at, loaded_at) <= t < least(superseded_at, transacted_at + N days).
-- On the grid: left_week_<N>d < weeks_before_end <= entered_week. Both ends are clamped to the
-- customer's spine (the snapshots at which the customer exists), so a version that became
-- visible before the spine starts counts from its first snapshot, and an empty run has
-- left_week = entered_week. Versions that no snapshot of the spine sees are dropped.

{%- set windows = [30, 60, 90, 365] %}

with transactions as (
    select * from {{ ref('int_transactions_versioned') }}
),

customers as (
    select * from {{ ref('int_customers_deduplicated') }}
),

snapshots as (
    select * from {{ ref('int_snapshots') }}
),

bounds as (
    select max(snapshot_end) as snapshot_end, max(weeks_before_end) as oldest_week from snapshots
),

customer_spans as (
    -- the customer's first snapshot: signed up and known (the mart's spine starts there)
    select
        customers.customer_id,
        least(
            {{ floor_weeks_between('customers.signed_up_at', 'bounds.snapshot_end') }},
            {{ floor_weeks_between('customers.first_loaded_at', 'bounds.snapshot_end') }},
            bounds.oldest_week
        ) as first_week
    from customers
    cross join bounds
),

visibility as (
    select
        transactions.*,
        customer_spans.first_week,
        greatest(transactions.transacted_at, transactions.loaded_at) as visible_from_at,
        {%- for days in windows %}
        least(
            coalesce(transactions.superseded_at, {{ add_days('transactions.transacted_at', days) }}),
            {{ add_days('transactions.transacted_at', days) }}
        ) as visible_until_{{ days }}d_at,
        {%- endfor %}
        bounds.snapshot_end
    from transactions
    inner join customer_spans on customer_spans.customer_id = transactions.customer_id
    cross join bounds
),

weeks as (
    -- first snapshot at or after each bound
    select
        *,
        {%- for days in windows %}
        {{ floor_weeks_between('visible_until_' ~ days ~ 'd_at', 'snapshot_end') }} as until_week_{{ days }}d,
        {%- endfor %}
        {{ floor_weeks_between('visible_from_at', 'snapshot_end') }} as from_week
    from visibility
),

clamped as (
    select
        *,
        least(from_week, first_week) as entered_week
    from weeks
    where from_week >= 0
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
