-- Transaction records removed as exact or near duplicates (same id, same arrival).
with transactions as (
    select * from {{ ref('int_transactions_unioned') }}
)

select * from transactions where duplicate_rank > 1
