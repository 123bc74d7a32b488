{%- set options = parse_options('cora', 'clients') -%}
{%- set c = quoted_columns(['Client ID', 'E-Mail', 'Full Name', 'Country Code', 'Year of Birth', 'Source', 'Registered', 'Ingested At']) -%}
with source as (
    select * from {{ csv_records(source('cora', 'clients'), ',', c.keys() | list) }} as records
),

parsed as (
    select
        'cora' as client_id,
        '{{ options.get('file', '') }}' as source_file,
        line_number,
        physical_lines,
        raw_line,
        record_problem,
        {{ normalised_customer_id('cora', c['Client ID']) }} as source_customer_id,
        {{ customer_id_is_well_formed('cora', c['Client ID']) }} as is_customer_id_well_formed,
        ({{ customer_id_is_test_account(c['Client ID']) }} or coalesce(lower({{ trim_text(c['E-Mail']) }}) like '%@example.com', false)) as is_test_account,
        {{ c['E-Mail'] }} as email,
        {{ c['Country Code'] }} as country,
        {{ try_bigint(trim_text(c['Year of Birth'])) }} as birth_year,
        {{ c['Source'] }} as acquisition_channel,
        {{ strict_timestamp(trim_text(c['Registered']), timestamp_spec(options, 'Registered')) }} as signed_up_at,
        {{ timestamp_problem(trim_text(c['Registered']), timestamp_spec(options, 'Registered'), 'unparseable_date') }} as signed_up_at_problem,
        {{ strict_timestamp(trim_text(c['Ingested At']), timestamp_spec(options, 'Ingested At')) }} as loaded_at,
        {{ timestamp_problem(trim_text(c['Ingested At']), timestamp_spec(options, 'Ingested At'), 'unparseable_loaded_at') }} as loaded_at_problem,
        case when record_problem is null
            then concat_ws(',', {{ c['Client ID'] }}, {{ c['Country Code'] }}, {{ c['Year of Birth'] }}, {{ c['Source'] }}, {{ c['Registered'] }}, {{ c['Ingested At'] }})
            else left(raw_line, {{ var('raw_record_chars') }}) end as raw_record
    from source
)

{{ stage_customers('parsed', audited=true) }}
