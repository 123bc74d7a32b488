{#-
  Sources per engine, from the same source `meta` (issue 16).

  DuckDB reads a file in a FROM clause: dbt-duckdb renders source() as the table's
  `meta.external_location` (the line reader of the raw files, read_csv / read_parquet).
  Spark cannot, so `register_sources()` (on-run-start) creates, before any model runs, one relation
  per enabled source table under the name source() renders (`<source>.<table>`):

    meta.file + format csv/jsonl/text   the raw line reader: one row per physical line, `raw_line`,
                                        decoded with meta.encoding, exactly as DuckDB's reader
                                        gives them (CRLF ends a line, a blank line is NULL, no row
                                        after the final newline), in file order
    meta.table_file (+ table_format)    a CSV with a header, every column text (the build's counts)
    meta.files (a glob) + typed_columns Parquet files read by column name with the declared types;
                                        no file yet = no rows

  Limits of the Spark line reader: each raw file is read whole (binaryFile) so line numbers and
  encodings are exact; one file must stay below 2 GB (split bigger drops into several files).
-#}

{% macro register_sources() %}{{ return(adapter.dispatch('register_sources', 'parity')()) }}{% endmacro %}

{# DuckDB: nothing to register (external_location). The hook must still be a statement. #}
{% macro default__register_sources() %}select 1 as sources_read_in_place{% endmacro %}

{% macro spark__register_sources() %}
    {%- if execute -%}
        {%- set schemas = [] -%}
        {%- for node in graph.sources.values() if node.config.get('enabled', true) -%}
            {%- set sql = spark_source_sql(node) -%}
            {%- if sql -%}
                {%- if node.schema not in schemas -%}
                    {%- do run_query('create schema if not exists ' ~ node.schema) -%}
                    {%- do schemas.append(node.schema) -%}
                {%- endif -%}
                {%- set existing = adapter.get_relation(database=none, schema=node.schema, identifier=node.identifier) -%}
                {%- if existing is not none -%}{%- do adapter.drop_relation(existing) -%}{%- endif -%}
                {%- do run_query(sql) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1 as sources_registered
{% endmacro %}

{# Java's name for a declared encoding. #}
{% macro _spark_charset(encoding) -%}
{%- set names = {'utf-8': 'UTF-8', 'utf8': 'UTF-8', 'latin-1': 'ISO-8859-1', 'latin1': 'ISO-8859-1',
                 'iso-8859-1': 'ISO-8859-1', 'ascii': 'US-ASCII', 'us-ascii': 'US-ASCII',
                 'utf-16': 'UTF-16', 'utf-16le': 'UTF-16LE', 'utf-16be': 'UTF-16BE'} -%}
{%- set key = (encoding or 'utf-8') | lower -%}
{%- if key not in names -%}
    {{ exceptions.raise_compiler_error("source encoding '" ~ encoding ~ "' has no Spark reader (known: " ~ (names.keys() | list) ~ ")") }}
{%- endif -%}
{{ names[key] }}
{%- endmacro %}

{# The statement creating one source table's relation on Spark ('' when the table needs none). #}
{% macro spark_source_sql(node) -%}
{%- set meta = node.meta -%}
{%- set name = node.schema ~ '.' ~ node.identifier -%}
{%- if meta.get('file') and meta.get('format', 'csv') in ('csv', 'jsonl', 'text') -%}
create view {{ name }} as
with decoded as (
    -- a UTF-8 byte-order mark is not part of the first line (DuckDB's reader drops it too)
    select regexp_replace(decode(content, '{{ _spark_charset(meta.get('encoding')) }}'), '^\uFEFF', '') as text
    from binaryFile.`{{ meta['file'] }}`
),
lines as (
    -- as DuckDB's line reader: no row after a final newline
    select posexplode(split(case when right(text, 1) = '\n' then substring(text, 1, length(text) - 1) else text end, '\n', -1)) as (line_index, line)
    from decoded
    where text <> ''
)
select nullif(regexp_replace(line, '\r$', ''), '') as raw_line
from lines
{%- elif meta.get('table_file') -%}
create table {{ name }} using csv options (path '{{ meta['table_file'] }}', header 'true', inferSchema 'false', multiLine 'true')
{%- elif meta.get('files') and meta.get('typed_columns') -%}
{%- set folder, pattern = meta['files'].rsplit('/', 1) -%}
create table {{ name }} (
    {%- for column, type in meta['typed_columns'].items() %}
    {{ column }} {{ engine_type(type) }}{{ ',' if not loop.last }}
    {%- endfor %}
) using parquet options (path '{{ folder }}', pathGlobFilter '{{ pattern }}')
{%- endif -%}
{%- endmacro %}

{# Whether a glob matches at least one file, at run time. #}
{% macro files_exist(pattern) %}{{ return(adapter.dispatch('files_exist', 'parity')(pattern)) }}{% endmacro %}
{% macro default__files_exist(pattern) %}
    {%- set found = run_query("select count(*) from glob('" ~ pattern ~ "')") -%}
    {{ return(found.columns[0].values()[0] > 0) }}
{% endmacro %}
{# Spark's relation over the glob has the declared columns and no rows when nothing matches. #}
{% macro spark__files_exist(pattern) %}{{ return(true) }}{% endmacro %}
