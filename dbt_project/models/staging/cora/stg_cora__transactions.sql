{%- set options = parse_options('cora', 'orders') -%}
with source as (
    select * from {{ csv_records(source('cora', 'orders'), ',',
        ['Order Ref', 'Client ID', 'Order Date', 'Total', 'Currency', 'Product Line', 'Status', 'Ingested At']) }} as records
),

parsed as (
    select
        'cora' as client_id,
        '{{ options.get('file', '') }}' as source_file,
        line_number,
        physical_lines,
        raw_line,
        record_problem,
        nullif(trim("Order Ref"), '') as transaction_id,
        upper(nullif(trim("Client ID"), '')) as source_customer_id,
        coalesce({{ matches('upper(trim("Client ID"))', 'CR-[0-9]{5}') }}, false) as is_customer_id_well_formed,
        coalesce(upper(trim("Client ID")) like 'TEST%', false) as is_test_account,
        case lower(trim("Status")) when 'completed' then 'purchase' when 'refunded' then 'refund' end as transaction_type,
        "Product Line" as category,
        upper(nullif(trim("Currency"), '')) as currency,
        {{ strict_decimal('trim("Total")', options) }} as amount_local,
        {{ decimal_problem('trim("Total")', options) }} as amount_problem,
        {{ strict_timestamp('trim("Order Date")', timestamp_spec(options, 'Order Date')) }} as transacted_at,
        {{ timestamp_problem('trim("Order Date")', timestamp_spec(options, 'Order Date'), 'unparseable_date') }} as transacted_at_problem,
        {{ strict_timestamp('trim("Ingested At")', timestamp_spec(options, 'Ingested At')) }} as loaded_at,
        {{ timestamp_problem('trim("Ingested At")', timestamp_spec(options, 'Ingested At'), 'unparseable_loaded_at') }} as loaded_at_problem,
        case when record_problem is null
            then concat_ws(',', "Order Ref", "Client ID", "Order Date", "Total", "Currency", "Product Line", "Status", "Ingested At")
            else left(raw_line, {{ var('raw_record_chars') }}) end as raw_record
    from source
)

{{ stage_transactions('parsed', audited=true) }}
