with source as (
    select * from {{ source('bolt', 'customers') }}
),

fields as (
    select
        {{ is_valid_json('raw_line') }} as is_record_parseable,
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
        is_record_parseable,
        lower(nullif(trim(id), '')) as source_customer_id,
        coalesce({{ matches("lower(trim(id))", 'b-[0-9]+') }}, false) as is_customer_id_well_formed,
        coalesce(lower(trim(id)) like 'test%' or lower(trim(email)) like '%@example.com', false) as is_test_account,
        email,
        country,
        {{ try_bigint('birth_year') }} as birth_year,
        channel as acquisition_channel,
        {{ parse_iso_timestamp('signed_up_at') }} as signed_up_at,
        {{ parse_iso_timestamp('received_at') }} as loaded_at,
        concat_ws(' | ', id, country, birth_year, channel, signed_up_at, received_at) as raw_record
    from fields
)

{{ stage_customers('parsed') }}
