with source as (
    select * from {{ source('customers_only', 'customers') }}
),

parsed as (
    select
        'customers_only' as client_id,
        churned is not null as is_record_parseable,
        {{ row_hash_id(['country', 'birth_year', 'channel', 'signup_date', 'churned']) }} as source_customer_id,
        true as is_customer_id_well_formed,
        false as is_test_account,
        cast(null as {{ dbt.type_string() }}) as email,
        country,
        {{ try_bigint(trim_text('birth_year')) }} as birth_year,
        channel as acquisition_channel,
        {{ local_to_utc(parse_timestamp(trim_text('signup_date'), '%Y-%m-%d'), 'UTC') }} as signed_up_at,
        {{ declared_arrival('null', 'customers_only', 'customers') }} as loaded_at,
        concat_ws(',', country, birth_year, channel, signup_date, churned) as raw_record
    from source
)

{{ stage_customers_only('parsed') }}
