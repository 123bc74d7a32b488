{%- set options = parse_options('bolt', 'customers') -%}
{%- set keys = ['id', 'email', 'name', 'country', 'birth_year', 'channel', 'signed_up_at', 'received_at'] -%}
with source as (
    select * from {{ jsonl_records(source('bolt', 'customers'), keys) }} as records
),

-- each line is parsed once for all its fields (jsonl_records), not once per field
fields as (
    select
        *,
        {{ list_element('field_values', 1) }} as id,
        {{ list_element('field_values', 2) }} as email,
        {{ list_element('field_values', 3) }} as name,
        {{ list_element('field_values', 4) }} as country,
        {{ list_element('field_values', 5) }} as birth_year,
        {{ list_element('field_values', 6) }} as channel,
        {{ list_element('field_values', 7) }} as signed_up_at,
        {{ list_element('field_values', 8) }} as received_at
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
        {{ normalised_customer_id('bolt', 'id') }} as source_customer_id,
        {{ customer_id_is_well_formed('bolt', 'id') }} as is_customer_id_well_formed,
        ({{ customer_id_is_test_account('id') }} or coalesce(lower({{ trim_text('email') }}) like '%@example.com', false)) as is_test_account,
        email,
        country,
        {{ try_bigint('birth_year') }} as birth_year,
        channel as acquisition_channel,
        {{ strict_timestamp('signed_up_at', timestamp_spec(options, 'signed_up_at')) }} as signed_up_at,
        {{ timestamp_problem('signed_up_at', timestamp_spec(options, 'signed_up_at'), 'unparseable_date') }} as signed_up_at_problem,
        {{ strict_timestamp('received_at', timestamp_spec(options, 'received_at')) }} as loaded_at,
        {{ timestamp_problem('received_at', timestamp_spec(options, 'received_at'), 'unparseable_loaded_at') }} as loaded_at_problem,
        -- the record's non-PII fields (name and e-mail left out), or the whole line when it is not a record
        case when record_problem is null
            then concat_ws(' | ', id, country, birth_year, channel, signed_up_at, received_at)
            else left(raw_line, {{ var('raw_record_chars') }}) end as raw_record
    from fields
)

{{ stage_customers('parsed', audited=true) }}
