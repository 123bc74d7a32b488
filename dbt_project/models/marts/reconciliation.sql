-- Per client and raw table: every raw row is accounted for as canonical, quarantined or a
-- removed duplicate. Each count comes from its own model, so a row lost anywhere in between
-- shows up as unaccounted_rows <> 0 and fails the build (test in _marts__models.yml).
-- flagged_rows: accepted rows kept under a client's declared flag rule (e.g. zero amounts under
-- `zero_amount_rule: flag`); already inside canonical/duplicate rows, counted so they are seen.
{% set tables = [('customers', 'int_customers_deduplicated', 'int_customers_duplicates'),
                 ('transactions', 'int_transactions_versioned', 'int_transactions_duplicates')] %}

with

raw_counts as (
    {% for client in var('clients') %}{% for table, canonical, duplicates in tables %}
    select '{{ client }}' as client_id, '{{ table }}' as source_table, count(*) as raw_rows,
        {% if table == 'transactions' -%}
        count(case when quarantine_reason is null and amount_flag is not null then 1 end)
        {%- else %}0{% endif %} as flagged_rows
    from {{ ref('stg_' ~ client ~ '__' ~ table) }}
    {% if not loop.last %}union all{% endif %}{% endfor %}
    {% if not loop.last %}union all{% endif %}{% endfor %}
),

canonical_counts as (
    {% for table, canonical, duplicates in tables %}
    select client_id, '{{ table }}' as source_table, count(*) as canonical_rows
    from {{ ref(canonical) }} group by client_id
    {% if not loop.last %}union all{% endif %}{% endfor %}
),

duplicate_counts as (
    {% for table, canonical, duplicates in tables %}
    select client_id, '{{ table }}' as source_table, count(*) as duplicate_rows
    from {{ ref(duplicates) }} group by client_id
    {% if not loop.last %}union all{% endif %}{% endfor %}
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
        cast(raw_counts.raw_rows as bigint) as raw_rows,
        cast(coalesce(canonical_counts.canonical_rows, 0) as bigint) as canonical_rows,
        cast(coalesce(quarantine_counts.quarantined_rows, 0) as bigint) as quarantined_rows,
        cast(coalesce(duplicate_counts.duplicate_rows, 0) as bigint) as duplicate_rows,
        cast(raw_counts.flagged_rows as bigint) as flagged_rows,
        cast(raw_counts.raw_rows
            - coalesce(canonical_counts.canonical_rows, 0)
            - coalesce(quarantine_counts.quarantined_rows, 0)
            - coalesce(duplicate_counts.duplicate_rows, 0) as bigint) as unaccounted_rows
    from raw_counts
    left join canonical_counts using (client_id, source_table)
    left join quarantine_counts using (client_id, source_table)
    left join duplicate_counts using (client_id, source_table)
)

select * from final
