-- Every client's own timeline: its watermark (the time up to which its data is known complete,
-- by the rule declared in vars.client_watermarks, default newest_arrival: see
-- macros/watermarks.sql) and its part of the fixed weekly grid (snapshots at vars.snapshot_anchor
-- + 7k days, macros/grid.sql): it ends at the last grid point at or before the watermark and runs
-- back snapshot_weeks weeks, but no further back than the first snapshot at which one of its
-- customers exists (so a client's mart rows follow its own span). Between grid points the newest
-- snapshot is up to 6 days older than the watermark (fresh events cover that gap: README).
-- One rule for every client, parameterised by the watermark: snapshots, as-of times and label
-- windows never reach past a client's watermark, so "the client has not sent data for t yet"
-- is never read as "the customer did not buy".

with transactions as (
    select * from {{ ref('int_transactions_versioned') }}
),

customers as (
    select * from {{ ref('int_customers_deduplicated') }}
),

declared as (
    {{ declared_watermark_rules() }}
),

pushed as (
    {{ pushed_event_keys() }}
),

arrivals as (
    -- a client without any accepted transaction has no timeline (nothing to build features on).
    -- Pushed events never move the watermark: one customer's event says nothing about whether
    -- the client's other data up to then has arrived (README "Fresh events")
    select
        transactions.client_id,
        max(transactions.loaded_at) as newest_loaded_at,
        max(transactions.transacted_at) as newest_transacted_at
    from transactions
    left join pushed
        on pushed.client_id = transactions.client_id
        and pushed.transaction_id = transactions.transaction_id
        and pushed.loaded_at = transactions.loaded_at
    where pushed.client_id is null
    group by transactions.client_id
),

watermarks as (
    select
        arrivals.client_id,
        coalesce(declared.watermark_rule, 'newest_arrival') as watermark_rule,
        case coalesce(declared.watermark_rule, 'newest_arrival')
            when 'fixed' then declared.declared_watermark_at
            when 'newest_event_plus_delay' then {{ add_hours('arrivals.newest_transacted_at', 'declared.delay_hours') }}
            else {{ next_midnight('arrivals.newest_loaded_at') }}
        end as watermark_at,
        arrivals.newest_loaded_at,
        arrivals.newest_transacted_at
    from arrivals
    left join declared on declared.client_id = arrivals.client_id
),

grid_ends as (
    select
        *,
        -- the last grid point at or before the watermark: a new day's drop moves it only when
        -- it crosses a grid point, so old snapshots keep their times (incremental marts)
        {{ grid_point_at_or_before('watermark_at') }} as snapshot_end
    from watermarks
),

first_customers as (
    -- the first time one of the client's customers is signed up and known, by the grid's end
    select
        customers.client_id,
        min(greatest(customers.signed_up_at, customers.first_loaded_at)) as first_customer_at
    from customers
    inner join grid_ends on grid_ends.client_id = customers.client_id
    where customers.signed_up_at <= grid_ends.snapshot_end
        and customers.first_loaded_at <= grid_ends.snapshot_end
    group by customers.client_id
),

final as (
    select
        -- ids
        grid_ends.client_id,
        -- strings
        grid_ends.watermark_rule,
        -- numerics
        -- (least() skips NULLs on some engines: no customer by the end must give 0, explicitly)
        cast(case when first_customers.first_customer_at is null then 0 else least(
            {{ floor_weeks_between('first_customers.first_customer_at', 'grid_ends.snapshot_end') }} + 1,
            {{ var('snapshot_weeks') }}
        ) end as bigint) as n_snapshots,
        -- timestamps
        grid_ends.watermark_at,
        grid_ends.snapshot_end,
        first_customers.first_customer_at,
        grid_ends.newest_loaded_at,
        grid_ends.newest_transacted_at
    from grid_ends
    left join first_customers on first_customers.client_id = grid_ends.client_id
)

select * from final
