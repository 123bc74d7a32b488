{% set layout = [('customer', 1, 8), ('purchased_on', 9, 10), ('amount', 20, 12),
                 ('currency', 33, 3), ('kind', 37, 1), ('category', 39, 40)] %}

with source as (
    select * from {{ source('fixed_width', 'purchases') }}
),

fields as (
    select
        raw_line,
        {{ fixed_width_is_complete('raw_line', layout) }} as is_complete,
        {{ fixed_width_fields('raw_line', layout) }}
    from source
),

parsed as (
    select
        'fixed_width' as client_id,
        is_complete as is_record_parseable,
        {{ row_hash_id(['customer', 'purchased_on', 'amount', 'currency', 'kind', 'category']) }} as transaction_id,
        upper(customer) as source_customer_id,
        coalesce({{ matches('upper(customer)', 'F-[0-9]{3}') }}, false) as is_customer_id_well_formed,
        false as is_test_account,
        case kind when 'P' then 'purchase' when 'R' then 'refund' end as transaction_type,
        category,
        upper(currency) as currency,
        {{ parse_amount('amount', decimal_separator=',', thousands_separator='.') }} as amount_local,
        {{ amount_format_problem('amount', decimal_separator=',', thousands_separator='.') }} as amount_problem,
        {{ local_to_utc(parse_timestamp('purchased_on', '%d.%m.%Y'), 'Europe/Berlin') }} as transacted_at,
        left(raw_line, 200) as raw_record
    from fields
),

arrived as (
    select
        *,
        {{ declared_arrival('transacted_at', 'fixed_width', 'purchases') }} as loaded_at
    from parsed
),

checked as (
    select *, coalesce({{ arrival_after_build('loaded_at') }}, amount_problem) as parse_reason
    from arrived
)

{{ stage_transactions('checked', parse_reason='parse_reason') }}
