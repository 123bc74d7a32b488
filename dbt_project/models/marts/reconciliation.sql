-- Per client and raw table: every physical record of the raw file is accounted for as canonical,
-- quarantined or a removed duplicate. physical_rows is counted by the pre-flight without the
-- engine (stg_build__physical_counts), raw_rows is what the engine's reader returned; each other
-- count comes from its own model, so a record lost anywhere -- by the reader included -- shows up
-- as unaccounted_rows <> 0 and fails the build (tests in _marts__models.yml).
-- flagged_rows: accepted rows kept under a client's declared flag rule (e.g. zero amounts under
-- `zero_amount_rule: flag`); already inside canonical/duplicate rows, counted so they are seen.
-- erased_rows: records of customers erased on request (make forget), their own category.
{% set tables = [('customers', 'int_customers_deduplicated', 'int_customers_duplicates'),
                 ('transactions', 'int_transactions_versioned', 'int_transactions_duplicates')] %}

with

raw_counts as (
    {% for client in var('clients') %}{% for table, canonical, duplicates in tables %}
    select '{{ client }}' as client_id, '{{ table }}' as source_table, count(*) as raw_rows,
        {% if table == 'transactions' -%}
        count(case when quarantine_reason is null and amount_flag is not null then 1 end)
        {%- else %}0{% endif %} as flagged_rows,
        -- tombstones of customers erased on request (macros/erasure.sql)
        count(case when quarantine_reason = '{{ erased_reason() }}' then 1 end) as erased_rows
    from {{ ref('stg_' ~ client ~ '__' ~ table) }}
    {% if not loop.last %}union all{% endif %}{% endfor %}
    union all{% endfor %}
    -- the event log, per client (its physical count is the whole log's: tested in
    -- tests/assert_event_log_fully_read.sql, as rows of clients no longer onboarded stay there)
    select client_id, 'events' as source_table, count(*) as raw_rows,
        count(case when quarantine_reason is null and amount_flag is not null then 1 end) as flagged_rows,
        count(case when quarantine_reason = '{{ erased_reason() }}' then 1 end) as erased_rows
    from {{ ref('stg_events__transactions') }}
    where client_id in ({% for client in var('clients') %}'{{ client }}'{% if not loop.last %}, {% endif %}{% endfor %})
    group by client_id
),

canonical_counts as (
    -- a transaction that came through the event log is counted under 'events'
    {% for table, canonical, duplicates in tables %}
    select client_id, source_table, count(*) as canonical_rows
    from (
        select client_id, {{ source_table_of(canonical, table) if table == 'transactions' else "'" ~ table ~ "'" }} as source_table
        from {{ ref(canonical) }} as {{ canonical }}
    ) as rows_by_source
    group by client_id, source_table
    {% if not loop.last %}union all{% endif %}{% endfor %}
),

duplicate_counts as (
    {% for table, canonical, duplicates in tables %}
    select client_id, source_table, count(*) as duplicate_rows
    from (
        select client_id, {{ source_table_of(duplicates, table) if table == 'transactions' else "'" ~ table ~ "'" }} as source_table
        from {{ ref(duplicates) }} as {{ duplicates }}
    ) as rows_by_source
    group by client_id, source_table
    {% if not loop.last %}union all{% endif %}{% endfor %}
),

physical_counts as (
    select client_id, source_table, physical_rows
    from {{ ref('stg_build__physical_counts') }}
),

quarantine_counts as (
    {% for client in var('clients') %}
    select client_id, source_table, count(*) as quarantined_rows
    from {{ ref('quarantine_' ~ client) }} group by client_id, source_table
    {% if not loop.last %}union all{% endif %}{% endfor %}
),

final as (
    select
        raw_counts.client_id,
        raw_counts.source_table,
        -- NULL for a table no raw file feeds (e.g. customers derived from transactions in
        -- staging): its rows are derived, so the engine's count is what is balanced
        cast(physical_counts.physical_rows as bigint) as physical_rows,
        cast(raw_counts.raw_rows as bigint) as raw_rows,
        cast(coalesce(canonical_counts.canonical_rows, 0) as bigint) as canonical_rows,
        cast(coalesce(quarantine_counts.quarantined_rows, 0) as bigint) as quarantined_rows,
        cast(coalesce(duplicate_counts.duplicate_rows, 0) as bigint) as duplicate_rows,
        cast(raw_counts.flagged_rows as bigint) as flagged_rows,
        cast(raw_counts.erased_rows as bigint) as erased_rows,
        cast(coalesce(physical_counts.physical_rows, raw_counts.raw_rows)
            - coalesce(canonical_counts.canonical_rows, 0)
            - coalesce(quarantine_counts.quarantined_rows, 0)
            - coalesce(duplicate_counts.duplicate_rows, 0)
            - raw_counts.erased_rows as bigint) as unaccounted_rows
    from raw_counts
    left join physical_counts using (client_id, source_table)
    left join canonical_counts using (client_id, source_table)
    left join quarantine_counts using (client_id, source_table)
    left join duplicate_counts using (client_id, source_table)
)

select * from final
