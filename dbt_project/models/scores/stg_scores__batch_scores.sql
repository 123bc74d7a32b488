{#-
    The batch results are optional: before the first `python -m batch score` there is no file
    and read_parquet fails on a glob that matches nothing. So look for files first (files_exist,
    macros/sources.sql, at run time) and read the source only when there are some; otherwise
    select the same typed columns (the source's meta.typed_columns) with zero rows. source() is
    called unconditionally so lineage always shows it.
-#}
{%- set batch_scores = source('scores', 'batch_scores') -%}
{%- set has_files = false -%}
{%- set columns = [] -%}
{%- if execute -%}
    {%- set meta = graph.sources['source.parity.scores.batch_scores'].meta -%}
    {%- set has_files = files_exist(meta.files) -%}
    {%- set columns = meta.typed_columns.items() | list -%}
{%- endif -%}

with source as (
    {% if has_files -%}
    select * from {{ batch_scores }}
    {%- else -%}
    -- no batch run yet: the same columns, no rows
    select
        {%- for name, type in columns %}
        cast(null as {{ engine_type(type) }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    where false
    {%- endif %}
),

renamed as (
    select
        -- ids
        cast(customer_id as {{ engine_type('varchar') }}) as customer_id,
        cast(client_id as {{ engine_type('varchar') }}) as client_id,
        cast(source_customer_id as {{ engine_type('varchar') }}) as source_customer_id,
        cast(segment_id as bigint) as segment_id,
        -- strings
        cast(status as {{ engine_type('varchar') }}) as score_status,
        cast(segment_name as {{ engine_type('varchar') }}) as segment_name,
        cast(reason_1 as {{ engine_type('varchar') }}) as reason_1,
        cast(reason_2 as {{ engine_type('varchar') }}) as reason_2,
        cast(reason_3 as {{ engine_type('varchar') }}) as reason_3,
        cast(model_name as {{ engine_type('varchar') }}) as model_name,
        cast(model_version as {{ engine_type('varchar') }}) as model_version,
        cast(segments_version as {{ engine_type('varchar') }}) as segments_version,
        cast(feature_service as {{ engine_type('varchar') }}) as feature_service,
        -- numerics
        cast(score as double) as churn_score,
        cast(threshold as double) as decision_threshold,
        -- booleans
        cast(decision as boolean) as is_at_risk,
        cast(is_active as boolean) as is_active,
        -- timestamps
        cast(as_of_at as {{ engine_type('timestamptz') }}) as as_of_at,
        cast(scored_at as {{ engine_type('timestamptz') }}) as scored_at
    from source
)

select * from renamed
