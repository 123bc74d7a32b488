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
