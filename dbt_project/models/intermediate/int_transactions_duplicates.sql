-- Transaction records removed as exact or near duplicates (same id, same arrival).
-- Incremental (DuckDB): only the keys int_transactions_versioned recomputed, from the records it
-- set aside (macros/incremental.sql: keyed_materialization); every other row is kept.
{{ config(**keyed_materialization('versioned_records')) }}
-- depends_on: {{ ref('int_transactions_versioned') }}
with transactions as (
    select * from {{ changed_records(ref('int_transactions_unioned')) }} as unioned
)

select * from transactions where duplicate_rank > 1
