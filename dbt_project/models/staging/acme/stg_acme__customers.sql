with source as (
    select * from {{ source('acme', 'customers') }}
),

parsed as (
    select
        'acme' as client_id,
        -- a short (truncated) line is padded with NULLs: its last field is then missing
        exportiert_am is not null as is_record_parseable,
        upper(nullif(trim(kundennummer), '')) as source_customer_id,
        coalesce({{ matches("upper(trim(kundennummer))", 'AC-[0-9]{6}') }}, false) as is_customer_id_well_formed,
        coalesce(upper(trim(kundennummer)) like 'TEST%' or lower(trim(email)) like '%@example.com', false) as is_test_account,
        email,
        land as country,
        {{ try_bigint('trim(geburtsjahr)') }} as birth_year,
        kanal as acquisition_channel,
        {{ local_to_utc(parse_timestamp('trim(anmeldedatum)', '%d/%m/%Y'), 'Europe/Berlin') }} as signed_up_at,
        {{ local_to_utc(parse_timestamp('trim(exportiert_am)', '%d/%m/%Y %H:%M:%S'), 'Europe/Berlin') }} as loaded_at,
        concat_ws(';', kundennummer, land, geburtsjahr, kanal, anmeldedatum, exportiert_am) as raw_record
    from source
)

{{ stage_customers('parsed') }}
