-- Customer records removed by deduplication (kept here so nothing is lost silently).
with customers as (
    select * from {{ ref('int_customers_unioned') }}
)

select * from customers where record_rank > 1
