-- The weekly snapshot grid: one row per snapshot, every 7 days back from the data's end.
-- weeks_before_end is the grid's integer coordinate; the snapshot at or after a time x is
-- floor_weeks_between(x, snapshot_end) weeks before the end.

with transactions as (
    select * from {{ ref('int_transactions_versioned') }}
),

bounds as (
    -- the data's "now": midnight after the newest arrival of any client
    select {{ next_midnight('max(loaded_at)') }} as snapshot_end from transactions
),

week_numbers as (
    {{ integer_series(var('snapshot_weeks')) }}
),

final as (
    select
        -- numerics
        week_numbers.i as weeks_before_end,
        -- timestamps
        {{ add_days('bounds.snapshot_end', '-7 * week_numbers.i') }} as snapshot_at,
        -- start (exclusive) of the 365-day window, computed once per snapshot, not per row
        {{ add_days('bounds.snapshot_end', '-7 * week_numbers.i - 365') }} as year_before_at,
        bounds.snapshot_end
    from bounds
    cross join week_numbers
)

select * from final
