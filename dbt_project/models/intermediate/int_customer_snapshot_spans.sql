-- Every customer's run of weekly snapshots: from the first snapshot at which the customer is
-- signed up and known (first_week, in weeks_before_end) to the data's end (week 0), with a
-- compact integer key so the per-snapshot work joins and sorts on 8 bytes, not on the text id,
-- and the customer attributes the feature mart carries on every snapshot row.

with customers as (
    select * from {{ ref('int_customers_deduplicated') }}
),

bounds as (
    select max(snapshot_end) as snapshot_end, max(weeks_before_end) as oldest_week
    from {{ ref('int_snapshots') }}
),

final as (
    select
        -- ids
        customers.customer_id,
        cast(row_number() over (order by customers.customer_id) as bigint) as customer_key,
        customers.client_id,
        -- strings
        customers.country,
        customers.acquisition_channel,
        -- numerics
        customers.birth_year,
        least(
            {{ floor_weeks_between('customers.signed_up_at', 'bounds.snapshot_end') }},
            {{ floor_weeks_between('customers.first_loaded_at', 'bounds.snapshot_end') }},
            bounds.oldest_week
        ) as first_week,
        -- timestamps
        customers.signed_up_at
    from customers
    cross join bounds
    -- signed up and known by the data's end (snapshot_at >= signed_up_at and >= first_loaded_at)
    where customers.signed_up_at <= bounds.snapshot_end
        and customers.first_loaded_at <= bounds.snapshot_end
)

select * from final
