with source as (
    select * from {{ source('cora', 'clients') }}
),

parsed as (
    select
        'cora' as client_id,
        "Ingested At" is not null as is_record_parseable,
        upper(nullif(trim("Client ID"), '')) as source_customer_id,
        coalesce({{ matches('upper(trim("Client ID"))', 'CR-[0-9]{5}') }}, false) as is_customer_id_well_formed,
        coalesce(upper(trim("Client ID")) like 'TEST%' or lower(trim("E-Mail")) like '%@example.com', false) as is_test_account,
        "E-Mail" as email,
        "Country Code" as country,
        {{ try_bigint('trim("Year of Birth")') }} as birth_year,
        "Source" as acquisition_channel,
        {{ parse_timestamp('trim("Registered")', '%Y-%m-%d') }} as signed_up_at_naive,
        {{ parse_timestamp('trim("Ingested At")', '%Y-%m-%d %H:%M:%S') }} as loaded_at_naive,
        concat_ws(',', "Client ID", "Country Code", "Year of Birth", "Source", "Registered", "Ingested At") as raw_record
    from source
),

utc as (
    select
        *,
        {{ local_to_utc('signed_up_at_naive', 'UTC') }} as signed_up_at,
        {{ local_to_utc('loaded_at_naive', 'UTC') }} as loaded_at
    from parsed
)

{{ stage_customers('utc') }}
