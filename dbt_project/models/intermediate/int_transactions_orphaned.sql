-- Transactions whose (well-formed) customer has no customer record: quarantined with reason
-- `orphan_customer` until the client sends the customer. Their raw record is redacted like every
-- quarantined record (no e-mail, phone number or name in clear text outside staging).
-- Incremental (DuckDB): only the keys int_transactions_versioned recomputed, from the records it
-- set aside (macros/incremental.sql: keyed_materialization); every other row is kept.
{{ config(**keyed_materialization('versioned_records')) }}
-- depends_on: {{ ref('int_transactions_versioned') }}
with transactions as (
    select * from {{ changed_records(ref('int_transactions_unioned')) }} as unioned
    where duplicate_rank = 1
),

customers as (
    select * from {{ ref('int_customers_deduplicated') }}
),

final as (
    select
        transactions.client_id,
        transactions.transaction_id,
        transactions.customer_id,
        transactions.source_customer_id,
        transactions.transaction_type,
        transactions.category,
        transactions.currency,
        transactions.amount_local,
        transactions.amount_usd,
        transactions.transacted_at,
        transactions.loaded_at,
        {{ redact_pii('transactions.raw_record') }} as raw_record,
        transactions.duplicate_rank,
        'orphan_customer' as quarantine_reason
    from transactions
    left join customers on transactions.customer_id = customers.customer_id
    where customers.customer_id is null
)

select * from final
