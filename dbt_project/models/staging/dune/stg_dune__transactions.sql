-- dune's purchase log: fixed-width lines split here; ids derived from the line, arrival from the
-- declared monthly drop (see _dune__sources.yml and the README's onboarding section).
{% set layout = [('customer', 1, 14), ('purchased_at', 15, 16), ('amount', 32, 14),
                 ('category', 47, 40)] %}

with source as (
    select * from {{ source('dune', 'purchases') }}
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
        'dune' as client_id,
        is_complete as is_record_parseable,
        {{ row_hash_id(['customer', 'purchased_at', 'amount', 'category']) }} as transaction_id,
        upper(customer) as source_customer_id,
        coalesce({{ matches('upper(customer)', 'DU-[0-9]{5}') }}, false) as is_customer_id_well_formed,
        coalesce(upper(customer) like 'TEST%', false) as is_test_account,
        'purchase' as transaction_type,
        category,
        'CAD' as currency,
        {{ parse_amount('amount', decimal_separator='.', thousands_separator=',') }} as amount_local,
        {{ amount_format_problem('amount', decimal_separator='.', thousands_separator=',') }} as amount_problem,
        {{ local_to_utc(parse_timestamp('purchased_at', '%d.%m.%Y %H:%M'), 'UTC') }} as transacted_at,
        left(raw_line, 200) as raw_record
    from fields
),

arrived as (
    select
        *,
        {{ declared_arrival('transacted_at', 'dune', 'purchases') }} as loaded_at
    from parsed
),

checked as (
    select *, coalesce({{ arrival_after_build('loaded_at') }}, amount_problem) as parse_reason
    from arrived
)

{{ stage_transactions('checked', parse_reason='parse_reason') }}
