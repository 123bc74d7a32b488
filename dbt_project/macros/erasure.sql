{#-
  Erasure on request (`make forget`, parity/governance/forget.py): the suppression list is
  <data>/governance/suppression.json (parity/suppression.py, its one home), handed to every dbt
  run as the environment variable PARITY_ERASED_CUSTOMER_KEYS by parity.config.Settings.env: a
  JSON list of sha256 hex digests of canonical customer keys (client_id || ':' || id).
  Staging keeps an erased customer's raw records as tombstones -- client, file and line only,
  every other column NULL, quarantine_reason `erased_on_request` -- so no model downstream sees
  them, the quarantine leaves them out and reconciliation counts them as erased_rows (the file's
  physical records still balance). A rebuild never brings the customer back.
-#}

{% macro erased_reason() %}erased_on_request{% endmacro %}

{# The suppression list; a malformed entry fails the build naming it. #}
{% macro erased_customer_keys() %}
{%- set keys = fromjson(env_var('PARITY_ERASED_CUSTOMER_KEYS', '[]')) -%}
{%- if keys is string or keys is mapping or keys is none -%}
    {{ exceptions.raise_compiler_error("PARITY_ERASED_CUSTOMER_KEYS must be a JSON list of sha256 hex digests") }}
{%- endif -%}
{%- for key in keys -%}
    {%- if key is not string or key | length != 64 or (key | lower) != key or key.strip('0123456789abcdef') != '' -%}
        {{ exceptions.raise_compiler_error("suppression list entry " ~ key ~ " is not a lowercase sha256 hex digest") }}
    {%- endif -%}
{%- endfor -%}
{{ return(keys) }}
{% endmacro %}

{#
  Wraps a staged select (the caller) whose output columns are `columns`: rows of a suppressed
  customer become tombstones (see above). Without erasures the select is left as it is.
#}
{% macro suppress_erased(columns) %}
{%- set keys = erased_customer_keys() -%}
{%- set kept = ['client_id', 'source_file', 'line_number', 'physical_lines'] -%}
{#- unit tests run on their own fictional fixture rows, whose ids may equal a real erased key -#}
{%- if keys | length == 0 or model.resource_type == 'unit_test' -%}
{{ caller() }}
{%- else -%}
select
{%- for column in columns %}
    {% if column in kept -%}
    {{ column }}
    {%- elif column == 'quarantine_reason' -%}
    case when is_erased then '{{ erased_reason() }}' else quarantine_reason end as quarantine_reason
    {%- else -%}
    case when is_erased then null else {{ column }} end as {{ column }}
    {%- endif %}{{ ',' if not loop.last }}
{%- endfor %}
from (
    select staged.*,
        coalesce({{ sha256_hex('staged.customer_id') }} in ({% for key in keys %}'{{ key }}'{{ ', ' if not loop.last }}{% endfor %}), false) as is_erased
    from (
{{ caller() }}
    ) as staged
) as marked
{%- endif -%}
{% endmacro %}
