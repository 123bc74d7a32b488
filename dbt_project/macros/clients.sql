{#-
  One list of clients: `vars.clients`. A client's own models exist only while it is listed, so
  removing it there removes it everywhere (its staging and quarantine models are disabled; with
  `config: {enabled: "{{ '<client>' in var('clients') }}"}` on its source, its raw files are
  neither read nor pre-flighted). Called by the shared staging macros; the client is the
  argument, or read from the model's name: stg_<client>__<entity> or quarantine_<client>.
-#}
{% macro onboarded_only(client=none) %}
    {%- set name = model.name -%}
    {%- if client is none and name.startswith('stg_') and '__' in name -%}
        {%- set client = name[4:].split('__')[0] -%}
    {%- elif client is none and name.startswith('quarantine_') -%}
        {%- set client = name[11:] -%}
    {%- endif -%}
    {#- the event log (stg_events__*) holds every client's rows and judges each row's client itself -#}
    {%- if client is not none and client != 'events' -%}
        {{- config(enabled=(client in var('clients'))) -}}
    {%- endif -%}
{% endmacro %}
