with source as (
    select * from {{ source('bolt', 'transactions') }}
),

fields as (
    select
        raw_line,
        {{ is_valid_json('raw_line') }} as is_record_parseable,
        {{ json_text('raw_line', 'txn_id') }} as txn_id,
        {{ json_text('raw_line', 'customer') }} as customer,
        {{ json_text('raw_line', 'ts') }} as ts,
        {{ json_text('raw_line', 'amount_cents') }} as amount_cents,
        {{ json_text('raw_line', 'currency') }} as currency,
        {{ json_text('raw_line', 'category') }} as category,
        {{ json_text('raw_line', 'kind') }} as kind,
        {{ json_text('raw_line', 'received_at') }} as received_at
    from source
),

parsed as (
    select
        'bolt' as client_id,
        is_record_parseable,
        nullif(trim(txn_id), '') as transaction_id,
        lower(nullif(trim(customer), '')) as source_customer_id,
        coalesce({{ matches("lower(trim(customer))", 'b-[0-9]+') }}, false) as is_customer_id_well_formed,
        coalesce(lower(trim(customer)) like 'test%', false) as is_test_account,
        case lower(trim(kind)) when 'purchase' then 'purchase' when 'refund' then 'refund' end as transaction_type,
        category,
        upper(nullif(trim(currency), '')) as currency,
        {{ try_double('amount_cents') }} / 100.0 as amount_local,
        {{ parse_iso_timestamp('ts') }} as transacted_at,
        {{ parse_iso_timestamp('received_at') }} as loaded_at,
        case when is_record_parseable
            then concat_ws(' | ', txn_id, customer, ts, amount_cents, currency, category, kind, received_at)
            else left(raw_line, 500) end as raw_record
    from fields
)

{{ stage_transactions('parsed') }}
