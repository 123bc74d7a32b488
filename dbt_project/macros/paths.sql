{#
    Where a build writes: PARITY_BUILD_DIR, set by `python -m parity build` to the build's own
    folder (<data dir>/builds/<id>, published only when every model and test passed). Without it
    (ad-hoc dbt commands, the manifest consumers read) paths resolve to the published build,
    <data dir>/published, so Feast's FileSource paths stay valid across publishes.
    profiles.yml and the `build` source spell the same expression (YAML cannot call macros).
#}
{% macro build_dir() -%}
{{ env_var('PARITY_BUILD_DIR', env_var('PARITY_DATA_DIR', '../data') ~ '/published') }}
{%- endmacro %}

{# Where an external (Parquet) mart is written: <build dir>/marts/<name>.parquet. #}
{% macro mart_location(name) -%}
{{ build_dir() }}/marts/{{ name }}.parquet
{%- endmacro %}
