{# Where an external (Parquet) mart is written: <data dir>/marts/<name>.parquet. #}
{% macro mart_location(name) -%}
{{ env_var('PARITY_DATA_DIR', '../data') }}/marts/{{ name }}.parquet
{%- endmacro %}
