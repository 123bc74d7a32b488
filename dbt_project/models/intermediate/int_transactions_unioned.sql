-- Every accepted transaction record of every client. Exact and near duplicates (the same
-- transaction id re-sent in the same arrival batch) get duplicate_rank > 1; a later arrival
-- of the same id is a correction (a new version), not a duplicate.
--
-- Only ~1% of the records share their (client, id, arrival) key, so only those are ranked: the
-- rank's window sorts a few hundred thousand rows instead of every record with its raw text
-- (the keys are never NULL here, staging quarantines such rows). The union is written out per
-- use instead of as a CTE, which DuckDB would materialize whole, raw text included.

{{ config(**keyed_materialization('unioned')) }}
{#- Incremental (DuckDB, README "Incremental builds"): only the keys whose records may have changed
    (macros/incremental.sql: unioned_changed_keys) are ranked again; every other row is kept. #}
{%- if execute and incremental_run() %}
{#- an incremental run: the staged records of the changed keys, read once by a pre-hook
    (macros/incremental.sql: record_staged_records) #}
{%- set unioned = '(select ' ~ unioned_columns() ~ ' from ' ~ unioned_records_table('staged') ~ ') as unioned' %}
{%- else %}
{%- set unioned -%}
(
    {% for client in var('clients') %}
    select
        client_id, transaction_id, customer_id, source_customer_id, transaction_type, category,
        currency, amount_local, amount_usd, transacted_at, loaded_at, raw_record
    from {{ ref('stg_' ~ client ~ '__transactions') }}
    where quarantine_reason is null
    union all
    {% endfor %}
    -- pushed events (the event log), every client's, judged by the same staging rules
    select
        client_id, transaction_id, customer_id, source_customer_id, transaction_type, category,
        currency, amount_local, amount_usd, transacted_at, loaded_at, raw_record
    from {{ ref('stg_events__transactions') }}
    where quarantine_reason is null
) as unioned
{%- endset %}
{%- endif %}

with duplicated_keys as (
    select client_id, transaction_id, loaded_at
    from {{ unioned }}
    group by client_id, transaction_id, loaded_at
    having count(*) > 1
),

singles as (
    select unioned.*, cast(1 as bigint) as duplicate_rank
    from {{ unioned }}
    left join duplicated_keys
        on duplicated_keys.client_id = unioned.client_id
        and duplicated_keys.transaction_id = unioned.transaction_id
        and duplicated_keys.loaded_at = unioned.loaded_at
    where duplicated_keys.client_id is null
),

duplicates as (
    select
        unioned.*,
        cast(row_number() over (
            partition by unioned.client_id, unioned.transaction_id, unioned.loaded_at
            order by unioned.transacted_at nulls last, unioned.amount_usd nulls last, unioned.customer_id nulls last,
                unioned.category nulls last, unioned.transaction_type nulls last, unioned.raw_record nulls last
        ) as bigint) as duplicate_rank
    from {{ unioned }}
    inner join duplicated_keys
        on duplicated_keys.client_id = unioned.client_id
        and duplicated_keys.transaction_id = unioned.transaction_id
        and duplicated_keys.loaded_at = unioned.loaded_at
),

final as (
    select * from singles
    union all
    select * from duplicates
)

select * from final
