{#-
  Incremental staging (`python -m parity build --incremental`, parity/ingest/incremental.py).

  Raw files only grow (a new day's drop is appended); the Python side proves that before it asks
  dbt for an incremental run (every raw file's old bytes unchanged, same project, same erasure
  list) and sets PARITY_INCREMENTAL=1; otherwise it builds everything. An incremental run starts
  from a copy of the published warehouse and re-parses, per audited staging model (one row per
  raw record, keyed by line_number):
    - every record from the previous run's last record on (the last record is re-read: an
      unclosed quote at the old end may close in the appended lines), and
    - every record the previous run refused as arriving after the build (the build time moved on:
      `arrival_after_build_time`, or a `future_date` given to a declared arrival, see below)
  and replaces those rows (delete+insert on line_number). Every other row is exactly what a full
  run computes, because staging judges each record on its own text only. DuckDB only: the Spark
  profile builds staging as tables, always in full.
-#}

{# The config of an audited staging model (called by stage_customers / stage_transactions): a
   client's drop (models/staging/), not the event log (a table; the fresh-event path runs its SQL). #}
{% macro staging_materialization() %}
    {%- if target.type == 'duckdb' and model.original_file_path.startswith('models/staging/') -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert', 'unique_key': 'line_number'}) }}
    {%- endif -%}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{# Whether this run adds to a copy of the published warehouse (see above). #}
{% macro incremental_run() %}
    {#- env first: dbt's unit tests have no relation to ask is_incremental() about -#}
    {{ return(env_var('PARITY_INCREMENTAL', '') == '1' and model.resource_type != 'unit_test' and is_incremental()) }}
{% endmacro %}

{# The WHERE clause choosing the records an incremental run re-parses (nothing on a full run). The
   line numbers are looked up first and written as constants: a subquery in the filter keeps
   DuckDB from pushing it below the parsing, which then runs on every record again. #}
{% macro incremental_staging_filter(parsed, event) %}
{%- if execute and incremental_run() %}
    {%- set cutoff = run_query("select coalesce(max(line_number), 0) from " ~ this).columns[0].values()[0] | int -%}
    {#- a `future_date` not earned by the event itself (after its arrival) is a declared arrival
        after the previous build's start (arrival_after_build, macros/shapes.sql): it may have arrived since -#}
    {%- set again = run_query("select line_number from " ~ this ~ " where line_number < " ~ cutoff
        ~ " and (quarantine_reason = 'arrival_after_build_time' or loaded_at > "
        ~ add_hours(build_time(), var('build_time_tolerance_hours'))
        ~ " or (quarantine_reason = 'future_date' and coalesce(" ~ event ~ " <= "
        ~ add_hours('loaded_at', var('future_tolerance_hours')) ~ ", true))) order by line_number").columns[0].values() | list -%}
    {#- many records to judge again: re-parse from the first of them on (a long IN list costs more) -#}
    {%- if again | length > 1000 -%}{%- set cutoff = again[0] | int -%}{%- set again = [] -%}{%- endif %}
where {{ parsed }}.line_number >= {{ cutoff }}
    {%- if again %}
    or {{ parsed }}.line_number in ({% for line in again %}{{ line | int }}{{ ', ' if not loop.last }}{% endfor %})
    {%- endif %}
{%- endif %}
{% endmacro %}

{#- ---- The incremental feature mart (README "Incremental builds") ------------------------------
  int_customer_feature_changes compares a fingerprint of each customer's inputs with the previous
  build's and says which of its snapshots this build computes (rebuild_week); the feature mart
  then computes those rows and keeps the previous build's others. -#}

{# int_customer_feature_changes keeps the previous build's fingerprints (DuckDB: incremental,
   every row replaced each run; Spark: a table, full builds only). #}
{% macro feature_changes_materialization() %}
    {%- if target.type == 'duckdb' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert', 'unique_key': 'customer_id'}) }}
    {%- endif -%}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{# Whether this run of a mart adds to the previous build's rows (an incremental run of a copied
   DuckDB warehouse whose mart exists): the mart's own relation holds the previous rows. #}
{% macro incremental_mart_run() %}
    {%- if not execute or target.type != 'duckdb' or model.resource_type == 'unit_test'
           or env_var('PARITY_INCREMENTAL', '') != '1' -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(load_relation(this) is not none) }}
{% endmacro %}

{# A number that changes when any of the columns' values does (summed over rows: order-free).
   DECIMAL(38, 0) on both engines, so that the fingerprint columns have one type everywhere (the
   scale group compares every table's types across engines); the values are engine-specific
   (DuckDB's hash vs Spark's xxhash64) and only ever compared with the same engine's previous build. #}
{% macro row_fingerprint(columns) %}{{ return(adapter.dispatch('row_fingerprint', 'parity')(columns)) }}{% endmacro %}
{% macro default__row_fingerprint(columns) %}cast(hash({{ columns | join(', ') }}) as decimal(38, 0)){% endmacro %}
{% macro spark__row_fingerprint(columns) %}cast(xxhash64({{ columns | join(', ') }}) as decimal(38, 0)){% endmacro %}
