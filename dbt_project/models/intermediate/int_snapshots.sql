-- The weekly snapshot grid of every client (its own timeline, int_client_timelines): one row per
-- client and snapshot, every 7 days back from the client's own end (a point of the fixed grid,
-- macros/grid.sql), n_snapshots of them. weeks_before_end is the integer coordinate the mart
-- computes in, relative to the client's end: the snapshot at or after a time x is
-- floor_weeks_between(x, snapshot_end) weeks before the end. grid_week numbers the snapshot from
-- the anchor (the same for a snapshot in every build; labels are at multiples of
-- label_every_n_snapshots).

with timelines as (
    select * from {{ ref('int_client_timelines') }}
),

week_numbers as (
    {{ integer_series(var('snapshot_weeks')) }}
),

final as (
    select
        -- ids
        timelines.client_id,
        -- numerics
        week_numbers.i as weeks_before_end,
        {{ grid_week('timelines.snapshot_end') }} - week_numbers.i as grid_week,
        -- timestamps
        {{ add_days('timelines.snapshot_end', '-7 * week_numbers.i') }} as snapshot_at,
        -- start (exclusive) of the 365-day window, computed once per snapshot, not per row
        {{ add_days('timelines.snapshot_end', '-7 * week_numbers.i - 365') }} as year_before_at,
        timelines.snapshot_end
    from timelines
    inner join week_numbers on week_numbers.i < timelines.n_snapshots
)

select * from final
