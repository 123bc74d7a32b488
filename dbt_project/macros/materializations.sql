{#-
  The `external` materialization on Spark: the marts every consumer reads (Feast, training, batch,
  monitoring) are Parquet at config.location (<build dir>/marts/<name>.parquet), as dbt-duckdb's
  `external` writes them. DuckDB writes one file there; Spark a folder of part files under the
  same path (readers take both: parity.ingest.warehouse). The model's relation is a table over
  those files, so dbt's tests and downstream models read what was written. The contract is
  enforced as for tables (column names, order and types against the YAML, macros/engine.sql
  engine_type). Instants are written as TIMESTAMP(MICROS, UTC) (profiles.yml), as DuckDB's are.
-#}
{% materialization external, adapter='spark', supported_languages=['sql'] %}
  {%- set location = config.get('location') -%}
  {%- if not location -%}
    {{ exceptions.raise_compiler_error(model.name ~ ": materialized='external' needs config(location=...)") }}
  {%- endif -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set old_relation = adapter.get_relation(database=database, schema=schema, identifier=this.identifier) -%}

  {{ run_hooks(pre_hooks) }}

  {%- set sql = compiled_code -%}
  {%- if config.get('contract').enforced -%}
    {{ get_assert_columns_equivalent(sql) }}
    {%- set sql = get_select_subquery(sql) -%}
  {%- endif -%}

  {% if old_relation is not none %}
    {{ adapter.drop_relation(old_relation) }}
  {% endif %}

  {#- write the files first (replacing what a previous run left there), then the table over them -#}
  {% call statement('write_files') -%}
    insert overwrite directory '{{ location }}' using parquet
    {{ sql }}
  {%- endcall %}

  {% call statement('main') -%}
    create table {{ target_relation }} using parquet location '{{ location }}'
  {%- endcall %}

  {{ run_hooks(post_hooks) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{#-
  The `external` materialization on DuckDB, replacing dbt-duckdb's own (a root-project
  materialization takes precedence): the mart's query is written straight to its Parquet file
  with one COPY, then the model's relation is a view over that file. dbt-duckdb's version first
  creates a table of every row in the warehouse, then copies that table to the file, then drops
  it: at 10M raw transactions most of the feature mart's time on an incremental day, whose own
  query keeps the previous build's rows and computes few (README "Incremental builds").
  The contract is enforced as dbt-duckdb's typed table enforced it: column names, order and
  types checked against the YAML, every value cast to its declared type, and not_null
  constraints checked on every row (the COPY fails naming the column); other constraint types
  are refused. COPY writes a temporary file beside the target and renames it over the target at
  the end (use_tmp_file): the query may read the target (the previous build's rows, hard-linked
  into this build folder) and a build never writes into a file another build still holds. An
  empty result is a Parquet file of no rows. A model may name a `keep_file_if` macro: on an
  incremental run, when it says the result is exactly the previous build's rows, that file stays.
-#}
{% materialization external, adapter='duckdb', supported_languages=['sql'] %}
  {%- set location = config.get('location') -%}
  {%- if not location or not location.endswith('.parquet') -%}
    {{ exceptions.raise_compiler_error(model.name ~ ": materialized='external' needs config(location='<...>.parquet')") }}
  {%- endif -%}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set existing_relation = load_cached_relation(this) -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- set sql = compiled_code -%}
  {%- if config.get('contract').enforced -%}
    {{ get_assert_columns_equivalent(sql) }}
    {%- set sql = contract_enforced_select(sql) -%}
  {%- endif -%}

  {#- keep_file_if: the name of a macro that says, on an incremental run, whether the previous
      build's file (hard-linked into this build folder) is this run's result -#}
  {%- set keep_if = config.get('keep_file_if') -%}
  {%- if keep_if and existing_relation is not none and incremental_mart_run() and context[keep_if]() -%}
    {{ log(model.name ~ ": no row computed or removed, the previous build's file is kept", info=false) }}
    {% call statement('write_file') -%}
      select 1 from read_parquet('{{ location }}') limit 0
    {%- endcall %}
  {%- else -%}
    {% call statement('write_file') -%}
      copy ({{ sql }}) to '{{ location }}' (format parquet, use_tmp_file true)
    {%- endcall %}
  {%- endif %}

  {%- if existing_relation is not none and existing_relation.type != 'view' -%}
    {{ adapter.drop_relation(existing_relation) }}
  {%- endif %}
  {% call statement('main') -%}
    create or replace view {{ target_relation }} as select * from read_parquet('{{ location }}')
  {%- endcall %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do persist_docs(target_relation, model) %}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{# `sql` as the contract declares it: the YAML's columns in order, each cast to its data_type,
   a NULL in a not_null column an error naming it. #}
{% macro contract_enforced_select(sql) %}
  {%- set columns = [] -%}
  {%- for column in model.columns.values() -%}
    {%- set name = adapter.quote(column.name) -%}
    {#- a namespace: a plain `set` inside the loop below would be gone after it (Jinja scoping),
        and with it the not_null check (tests/parity/ingest/test_mart_not_null.py) -#}
    {%- set column_sql = namespace(value='cast(' ~ name ~ ' as ' ~ column.data_type ~ ')') -%}
    {%- for constraint in column.constraints -%}
      {%- if constraint.type != 'not_null' -%}
        {{ exceptions.raise_compiler_error(model.name ~ "." ~ column.name ~ ": only not_null constraints are enforced on an external (Parquet) model, not " ~ constraint.type) }}
      {%- endif -%}
      {%- set column_sql.value = "case when " ~ name ~ " is null then error('" ~ model.name ~ "." ~ column.name
                                 ~ ": NULL in a not_null column') else " ~ column_sql.value ~ " end" -%}
    {%- endfor -%}
    {%- do columns.append(column_sql.value ~ ' as ' ~ name) -%}
  {%- endfor -%}
  {%- if model.constraints -%}
    {{ exceptions.raise_compiler_error(model.name ~ ": model-level constraints are not enforced on an external (Parquet) model") }}
  {%- endif -%}
  {{ return('select ' ~ columns | join(', ') ~ ' from (' ~ sql ~ ') as model_subquery') }}
{% endmacro %}
