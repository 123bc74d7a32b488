{#-
  Client customer ids: how each client's ids are normalised and what a well-formed one looks like,
  declared once per client in vars.parsing.<client>.customer_id (dbt_project.yml):
      customer_id: {case: upper|lower|as_written, pattern: <regex the normalised id fully matches>}
  Every path that keys a customer reads it: the client's staging models (its drop files), the
  event log's staging (stg_events__transactions: a pushed '<client>:<id>' is normalised by its
  client's rule, so 'cora:cr-00025' is the customer of cora's file line ' cr-00025 '), and Python
  (parity.customer_keys: /v1/predict keys, governance finding a customer's events).
  Normalising: surrounding blanks (spaces) trimmed, then the declared case; an empty id is NULL.
  A client without a declaration keeps its ids as written, under the generic pattern below.
-#}

{# The declared rule of `client`: {case, pattern}. #}
{% macro customer_id_rule(client) %}
    {%- set declared = (var('parsing', {}).get(client) or {}).get('customer_id') or {} -%}
    {%- set rule = {'case': declared.get('case', 'as_written'),
                    'pattern': declared.get('pattern', '[A-Za-z0-9][A-Za-z0-9._/#-]{0,63}')} -%}
    {%- if rule.case not in ('upper', 'lower', 'as_written') -%}
        {{ exceptions.raise_compiler_error("dbt_project.yml vars.parsing." ~ client ~ ".customer_id.case must be upper, lower or as_written; got " ~ rule.case) }}
    {%- endif -%}
    {{ return(rule) }}
{% endmacro %}

{# The normalised client customer id of the text `expr` (SQL), by `client`'s declared rule. #}
{% macro normalised_customer_id(client, expr) -%}
{%- set case = customer_id_rule(client).case -%}
{%- set trimmed = 'nullif(' ~ trim_text(expr) ~ ", '')" -%}
{%- if case == 'upper' -%}upper({{ trimmed }}){%- elif case == 'lower' -%}lower({{ trimmed }}){%- else -%}{{ trimmed }}{%- endif -%}
{%- endmacro %}

{# Whether the text `expr` is, once normalised, a well-formed id of `client` (never NULL). #}
{% macro customer_id_is_well_formed(client, expr) -%}
coalesce({{ matches(normalised_customer_id(client, expr), customer_id_rule(client).pattern) }}, false)
{%- endmacro %}

{# Whether the id `expr` is an internal test account (any client: it starts with 'test', any case). #}
{% macro customer_id_is_test_account(expr) -%}
coalesce(lower({{ trim_text(expr) }}) like 'test%', false)
{%- endmacro %}

{# For rows of several clients (the event log): the id normalised by the rule of the client named
   in column `client_column` (a client not onboarded: trimmed only, refused as unknown_client). #}
{% macro normalised_customer_id_by_client(client_column, expr) -%}
case {{ client_column }}
    {%- for client in var('clients') %}
    when '{{ client }}' then {{ normalised_customer_id(client, expr) }}
    {%- endfor %}
    else nullif({{ trim_text(expr) }}, '')
end
{%- endmacro %}

{# The same for well-formedness (a client not onboarded: the generic pattern). #}
{% macro customer_id_is_well_formed_by_client(client_column, expr) -%}
case {{ client_column }}
    {%- for client in var('clients') %}
    when '{{ client }}' then {{ customer_id_is_well_formed(client, expr) }}
    {%- endfor %}
    else {{ customer_id_is_well_formed('', expr) }}
end
{%- endmacro %}
