{%- set options = parse_options('bolt', 'customers') -%}
with source as (
    select * from {{ jsonl_records(source('bolt', 'customers'),
        ['id', 'email', 'name', 'country', 'birth_year', 'channel', 'signed_up_at', 'received_at']) }} as records
),

fields as (
    select
        *,
        {{ json_text('raw_line', 'id') }} as id,
        {{ json_text('raw_line', 'email') }} as email,
        {{ json_text('raw_line', 'country') }} as country,
        {{ json_text('raw_line', 'birth_year') }} as birth_year,
        {{ json_text('raw_line', 'channel') }} as channel,
        {{ json_text('raw_line', 'signed_up_at') }} as signed_up_at,
        {{ json_text('raw_line', 'received_at') }} as received_at
    from source
),

parsed as (
    select
        'bolt' as client_id,
        '{{ options.get('file', '') }}' as source_file,
        line_number,
        physical_lines,
        raw_line_sha256,
        record_problem,
        lower(nullif(trim(id), '')) as source_customer_id,
        coalesce({{ matches("lower(trim(id))", 'b-[0-9]+') }}, false) as is_customer_id_well_formed,
        coalesce(lower(trim(id)) like 'test%' or lower(trim(email)) like '%@example.com', false) as is_test_account,
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
