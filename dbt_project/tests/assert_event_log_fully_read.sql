-- Every record of the event log is a staged row: the pre-flight's physical count of the log
-- (source `events`, counted without the engine) equals the rows DuckDB's reader returned.
-- Per client the reconciliation balances the rest (canonical + quarantined + duplicates).
with physical as (
    select coalesce(sum(physical_rows), 0) as physical_rows
    from {{ ref('stg_build__physical_counts') }}
    where client_id = 'events'
),

staged as (
    select count(*) as raw_rows from {{ ref('stg_events__transactions') }}
)

select physical.physical_rows, staged.raw_rows
from physical cross join staged
where physical.physical_rows <> staged.raw_rows
