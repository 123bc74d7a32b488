with source as (
    select * from {{ source('whitespace_log', 'purchases') }}
),

fields as (
    select
        raw_line,
        {{ whitespace_field_count('raw_line') }} as field_count,
        {{ whitespace_field('raw_line', 1) }} as customer,
        {{ whitespace_field('raw_line', 2) }} as purchased_on,
        {{ whitespace_field('raw_line', 3) }} as items,
        {{ whitespace_field('raw_line', 4) }} as amount
    from source
),

parsed as (
    select
        'whitespace_log' as client_id,
        field_count = 4 as is_record_parseable,
        {{ row_hash_id(['customer', 'purchased_on', 'items', 'amount']) }} as transaction_id,
        customer as source_customer_id,
        coalesce({{ matches('customer', '[0-9]{5}') }}, false) as is_customer_id_well_formed,
        false as is_test_account,
        'purchase' as transaction_type,
        cast(null as {{ dbt.type_string() }}) as category,
        'USD' as currency,
        {{ parse_amount('amount', decimal_separator='.') }} as amount_local,
        {{ amount_format_problem('amount', decimal_separator='.') }} as amount_problem,
        {{ local_to_utc(parse_timestamp('purchased_on', '%Y%m%d'), 'UTC') }} as transacted_at,
        left(raw_line, 200) as raw_record
    from fields
),

arrived as (
    select
        *,
        {{ declared_arrival('transacted_at', 'whitespace_log', 'purchases') }} as loaded_at
    from parsed
),

checked as (
    select *, coalesce({{ arrival_after_build('loaded_at') }}, amount_problem) as parse_reason
    from arrived
)

{{ stage_transactions('checked', parse_reason='parse_reason') }}
