{%- set options = parse_options('bolt', 'transactions') -%}
{%- set keys = ['txn_id', 'customer', 'ts', 'amount_cents', 'currency', 'category', 'kind', 'received_at'] -%}
with source as (
    select * from {{ jsonl_records(source('bolt', 'transactions'), keys) }} as records
),

-- each line is parsed once for all its fields (jsonl_records), not once per field
fields as (
    select
        *,
        {{ list_element('field_values', 1) }} as txn_id,
        {{ list_element('field_values', 2) }} as customer,
        {{ list_element('field_values', 3) }} as ts,
        {{ list_element('field_values', 4) }} as amount_cents,
        {{ list_element('field_values', 5) }} as currency,
        {{ list_element('field_values', 6) }} as category,
        {{ list_element('field_values', 7) }} as kind,
        {{ list_element('field_values', 8) }} as received_at,
        {{ list_element('field_types', 4) }} as amount_cents_type
    from source
),

parsed as (
    select
        'bolt' as client_id,
        '{{ options.get('file', '') }}' as source_file,
        line_number,
        physical_lines,
        raw_line,
        record_problem,
        nullif({{ trim_text('txn_id') }}, '') as transaction_id,
        {{ normalised_customer_id('bolt', 'customer') }} as source_customer_id,
        {{ customer_id_is_well_formed('bolt', 'customer') }} as is_customer_id_well_formed,
        {{ customer_id_is_test_account('customer') }} as is_test_account,
        case lower({{ trim_text('kind') }}) when 'purchase' then 'purchase' when 'refund' then 'refund' end as transaction_type,
        category,
        upper(nullif({{ trim_text('currency') }}, '')) as currency,
        -- integer cents, as a JSON number: a string, a fraction of a cent or NaN is refused
        case when amount_cents_type in ('BIGINT', 'UBIGINT') then {{ try_double('amount_cents') }} / 100.0 end as amount_local,
        case
            when amount_cents_type in ('BIGINT', 'UBIGINT') then null
            when amount_cents_type is null or amount_cents_type = 'NULL' then 'unparseable_amount'
            when amount_cents_type = 'VARCHAR' and {{ matches(trim_text('amount_cents'), '[+-]?[0-9]+') }} then 'wrong_type'
            when amount_cents_type = 'BOOLEAN' then 'wrong_type'
            when {{ matches('lower(amount_cents)', '[+-]?(nan|inf|infinity)') }} then 'non_finite_amount'
            when amount_cents_type = 'DOUBLE' then 'ambiguous_amount'
            else 'unparseable_amount'
        end as amount_problem,
        {{ strict_timestamp('ts', timestamp_spec(options, 'ts')) }} as transacted_at,
        {{ timestamp_problem('ts', timestamp_spec(options, 'ts'), 'unparseable_date') }} as transacted_at_problem,
        {{ strict_timestamp('received_at', timestamp_spec(options, 'received_at')) }} as loaded_at,
        {{ timestamp_problem('received_at', timestamp_spec(options, 'received_at'), 'unparseable_loaded_at') }} as loaded_at_problem,
        case when record_problem is null
            then concat_ws(' | ', txn_id, customer, ts, amount_cents, currency, category, kind, received_at)
            else left(raw_line, {{ var('raw_record_chars') }}) end as raw_record
    from fields
)

{{ stage_transactions('parsed', audited=true) }}
