{%- set options = parse_options('acme', 'customers') -%}
with source as (
    select * from {{ csv_records(source('acme', 'customers'), ';',
        ['kundennummer', 'name', 'email', 'land', 'geburtsjahr', 'kanal', 'anmeldedatum', 'exportiert_am'],
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
        {{ normalised_customer_id('acme', 'kundennummer') }} as source_customer_id,
        {{ customer_id_is_well_formed('acme', 'kundennummer') }} as is_customer_id_well_formed,
        ({{ customer_id_is_test_account('kundennummer') }} or coalesce(lower({{ trim_text('email') }}) like '%@example.com', false)) as is_test_account,
        email,
        land as country,
        {{ try_bigint(trim_text('geburtsjahr')) }} as birth_year,
        kanal as acquisition_channel,
        {{ strict_timestamp(trim_text('anmeldedatum'), timestamp_spec(options, 'anmeldedatum')) }} as signed_up_at,
        {{ timestamp_problem(trim_text('anmeldedatum'), timestamp_spec(options, 'anmeldedatum'), 'unparseable_date') }} as signed_up_at_problem,
        {{ strict_timestamp(trim_text('exportiert_am'), timestamp_spec(options, 'exportiert_am')) }} as loaded_at,
        {{ timestamp_problem(trim_text('exportiert_am'), timestamp_spec(options, 'exportiert_am'), 'unparseable_loaded_at') }} as loaded_at_problem,
        -- the record's non-PII fields (name and e-mail left out), or the whole line when it did not split
        case when record_problem is null
            then concat_ws(';', kundennummer, land, geburtsjahr, kanal, anmeldedatum, exportiert_am)
            else left(raw_line, {{ var('raw_record_chars') }}) end as raw_record
    from source
)

{{ stage_customers('parsed', audited=true) }}
