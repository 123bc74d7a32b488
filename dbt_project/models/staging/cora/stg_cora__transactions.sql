{%- set options = parse_options('cora', 'orders') -%}
{%- set c = quoted_columns(['Order Ref', 'Client ID', 'Order Date', 'Total', 'Currency', 'Product Line', 'Status', 'Ingested At']) -%}
with source as (
    select * from {{ csv_records(source('cora', 'orders'), ',', c.keys() | list) }} as records
),

parsed as (
    select
        'cora' as client_id,
        '{{ options.get('file', '') }}' as source_file,
        line_number,
        physical_lines,
        raw_line,
        record_problem,
        nullif({{ trim_text(c['Order Ref']) }}, '') as transaction_id,
        {{ normalised_customer_id('cora', c['Client ID']) }} as source_customer_id,
        {{ customer_id_is_well_formed('cora', c['Client ID']) }} as is_customer_id_well_formed,
        {{ customer_id_is_test_account(c['Client ID']) }} as is_test_account,
        case lower({{ trim_text(c['Status']) }}) when 'completed' then 'purchase' when 'refunded' then 'refund' end as transaction_type,
        {{ c['Product Line'] }} as category,
        upper(nullif({{ trim_text(c['Currency']) }}, '')) as currency,
        {{ strict_decimal(trim_text(c['Total']), options) }} as amount_local,
        {{ decimal_problem(trim_text(c['Total']), options) }} as amount_problem,
        {{ strict_timestamp(trim_text(c['Order Date']), timestamp_spec(options, 'Order Date')) }} as transacted_at,
        {{ timestamp_problem(trim_text(c['Order Date']), timestamp_spec(options, 'Order Date'), 'unparseable_date') }} as transacted_at_problem,
        {{ strict_timestamp(trim_text(c['Ingested At']), timestamp_spec(options, 'Ingested At')) }} as loaded_at,
        {{ timestamp_problem(trim_text(c['Ingested At']), timestamp_spec(options, 'Ingested At'), 'unparseable_loaded_at') }} as loaded_at_problem,
        case when record_problem is null
            then concat_ws(',', {{ c['Order Ref'] }}, {{ c['Client ID'] }}, {{ c['Order Date'] }}, {{ c['Total'] }}, {{ c['Currency'] }}, {{ c['Product Line'] }}, {{ c['Status'] }}, {{ c['Ingested At'] }})
            else left(raw_line, {{ var('raw_record_chars') }}) end as raw_record
    from source
)

{{ stage_transactions('parsed', audited=true) }}
