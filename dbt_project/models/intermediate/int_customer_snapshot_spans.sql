-- Every customer's run of weekly snapshots on its client's own grid (int_client_timelines): from
-- the first snapshot at which the customer is signed up and known (first_week, in the client's
-- weeks_before_end) to the client's end (week 0), with a compact integer key (a 63-bit hash of the
-- id) so the per-snapshot work joins and sorts on 8 bytes, not on the text id, and the customer attributes the feature
-- mart carries on every snapshot row.

with customers as (
    select * from {{ ref('int_customers_deduplicated') }}
),

timelines as (
    select * from {{ ref('int_client_timelines') }}
),

final as (
    select
        -- ids
        customers.customer_id,
        -- a function of the id alone, so a customer keeps its key when others come and go (the
        -- incremental interval table keeps the rows of unchanged customers); unique (tested)
        {{ stable_key('customers.customer_id') }} as customer_key,
        customers.client_id,
        -- strings
        customers.country,
        customers.acquisition_channel,
        -- numerics
        customers.birth_year,
        least(
            {{ floor_weeks_between('customers.signed_up_at', 'timelines.snapshot_end') }},
            {{ floor_weeks_between('customers.first_loaded_at', 'timelines.snapshot_end') }},
            timelines.n_snapshots - 1
        ) as first_week,
        -- timestamps
        customers.signed_up_at
    from customers
    -- a customer of a client without a timeline (no transactions) has no snapshot
    inner join timelines on timelines.client_id = customers.client_id
    -- signed up and known by the client's end (snapshot_at >= signed_up_at and >= first_loaded_at)
    where customers.signed_up_at <= timelines.snapshot_end
        and customers.first_loaded_at <= timelines.snapshot_end
        and timelines.n_snapshots > 0
)

select * from final
