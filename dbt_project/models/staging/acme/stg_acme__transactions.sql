{%- set options = parse_options('acme', 'transactions') -%}
with source as (
    select * from {{ csv_records(source('acme', 'transactions'), ';',
        ['buchungsnr', 'kundennummer', 'datum', 'betrag', 'waehrung', 'kategorie', 'art', 'exportiert_am'],
        encoding='latin-1') }} as records
),

parsed as (
    select
        'acme' as client_id,
        '{{ options.get('file', '') }}' as source_file,
        line_number,
        physical_lines,
        raw_line,
        record_problem,
        nullif({{ trim_text('buchungsnr') }}, '') as transaction_id,
        {{ normalised_customer_id('acme', 'kundennummer') }} as source_customer_id,
        {{ customer_id_is_well_formed('acme', 'kundennummer') }} as is_customer_id_well_formed,
        {{ customer_id_is_test_account('kundennummer') }} as is_test_account,
        case {{ trim_text('art') }} when 'K' then 'purchase' when 'R' then 'refund' end as transaction_type,
        kategorie as category,
        upper(nullif({{ trim_text('waehrung') }}, '')) as currency,
        -- refunds arrive negative: store the magnitude, the sign lives in transaction_type
        case when {{ trim_text('art') }} = 'R' then -1 else 1 end
            * {{ strict_decimal(trim_text('betrag'), options) }} as amount_local,
        {{ decimal_problem(trim_text('betrag'), options) }} as amount_problem,
        {{ strict_timestamp(trim_text('datum'), timestamp_spec(options, 'datum')) }} as transacted_at,
        {{ timestamp_problem(trim_text('datum'), timestamp_spec(options, 'datum'), 'unparseable_date') }} as transacted_at_problem,
        {{ strict_timestamp(trim_text('exportiert_am'), timestamp_spec(options, 'exportiert_am')) }} as loaded_at,
        {{ timestamp_problem(trim_text('exportiert_am'), timestamp_spec(options, 'exportiert_am'), 'unparseable_loaded_at') }} as loaded_at_problem,
        case when record_problem is null
            then concat_ws(';', buchungsnr, kundennummer, datum, betrag, waehrung, kategorie, art, exportiert_am)
            else left(raw_line, {{ var('raw_record_chars') }}) end as raw_record
    from source
)

{{ stage_transactions('parsed', audited=true) }}
