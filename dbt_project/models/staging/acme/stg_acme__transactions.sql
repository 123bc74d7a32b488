with source as (
    select * from {{ source('acme', 'transactions') }}
),

parsed as (
    select
        'acme' as client_id,
        -- a short (truncated) line is padded with NULLs: its last field is then missing
        exportiert_am is not null as is_record_parseable,
        nullif(trim(buchungsnr), '') as transaction_id,
        upper(nullif(trim(kundennummer), '')) as source_customer_id,
        coalesce({{ matches("upper(trim(kundennummer))", 'AC-[0-9]{6}') }}, false) as is_customer_id_well_formed,
        coalesce(upper(trim(kundennummer)) like 'TEST%', false) as is_test_account,
        case trim(art) when 'K' then 'purchase' when 'R' then 'refund' end as transaction_type,
        kategorie as category,
        upper(nullif(trim(waehrung), '')) as currency,
        -- refunds arrive negative: store the magnitude, the sign lives in transaction_type
        case when trim(art) = 'R' then -1 else 1 end
            * {{ try_double("replace(trim(betrag), ',', '.')") }} as amount_local,
        {{ local_to_utc(parse_timestamp('trim(datum)', '%d/%m/%Y %H:%M'), 'Europe/Berlin') }} as transacted_at,
        {{ local_to_utc(parse_timestamp('trim(exportiert_am)', '%d/%m/%Y %H:%M:%S'), 'Europe/Berlin') }} as loaded_at,
        concat_ws(';', buchungsnr, kundennummer, datum, betrag, waehrung, kategorie, art, exportiert_am) as raw_record
    from source
)

{{ stage_transactions('parsed') }}
