{{ config(materialized='table', schema='build') }}

-- Physical records per client and canonical table (the staging model's entity: a client's
-- `clients.csv` feeds customers), counted by the pre-flight without the engine; a table fed by
-- several raw files sums them.

with source as (
    select * from {{ source('build', 'physical_counts') }}
),

summed as (
    select
        -- ids
        cast(client_id as {{ engine_type('varchar') }}) as client_id,
        cast(source_table as {{ engine_type('varchar') }}) as source_table,
        -- strings
        {{ ordered_text_agg("cast(file as " ~ engine_type('varchar') ~ ")", "', '", 'file') }} as raw_files,
        -- numerics
        cast(sum(cast(physical_rows as bigint)) as bigint) as physical_rows
    from source
    group by 1, 2
)

select * from summed
