with source as (
    select * from {{ source('cora', 'orders') }}
),

parsed as (
    select
        'cora' as client_id,
        "Ingested At" is not null as is_record_parseable,
        nullif(trim("Order Ref"), '') as transaction_id,
        upper(nullif(trim("Client ID"), '')) as source_customer_id,
        coalesce({{ matches('upper(trim("Client ID"))', 'CR-[0-9]{5}') }}, false) as is_customer_id_well_formed,
        coalesce(upper(trim("Client ID")) like 'TEST%', false) as is_test_account,
        case lower(trim("Status")) when 'completed' then 'purchase' when 'refunded' then 'refund' end as transaction_type,
        "Product Line" as category,
        upper(nullif(trim("Currency"), '')) as currency,
        {{ try_double('trim("Total")') }} as amount_local,
        {{ local_to_utc(parse_timestamp('trim("Order Date")', '%Y-%m-%d %H:%M:%S'), 'UTC') }} as transacted_at,
        {{ local_to_utc(parse_timestamp('trim("Ingested At")', '%Y-%m-%d %H:%M:%S'), 'UTC') }} as loaded_at,
        concat_ws(',', "Order Ref", "Client ID", "Order Date", "Total", "Currency", "Product Line", "Status", "Ingested At") as raw_record
    from source
)

{{ stage_transactions('parsed') }}
