-- Transactions whose (well-formed) customer has no customer record: quarantined with reason
-- `orphan_customer` until the client sends the customer.
with transactions as (
    select * from {{ ref('int_transactions_unioned') }}
    where duplicate_rank = 1
),

customers as (
    select * from {{ ref('int_customers_deduplicated') }}
),

final as (
    select
        transactions.*,
        'orphan_customer' as quarantine_reason
    from transactions
    left join customers on transactions.customer_id = customers.customer_id
    where customers.customer_id is null
)

select * from final
