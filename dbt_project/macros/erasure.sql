{#-
  Erasure on request (`make forget`, parity/governance/forget.py): the suppression list is
  <data>/governance/suppression.csv (parity/suppression.py, its one home: header
  `key_sha256,added_at`, one sha256 hex digest of a canonical customer key a line). Every dbt
  run is told where it is by parity.config.Settings.env (PARITY_ERASED_CUSTOMERS_FILE, set only
  when the list holds a key; checked there, so a malformed list stops the build before dbt).
  The engine reads the file and staging joins it -- never a list inlined into the SQL, so the
  number of erased customers is not limited -- and keeps an erased customer's raw records as
  tombstones: client, file and line only, every other column NULL, quarantine_reason
  `erased_on_request`. No model downstream sees them, the quarantine leaves them out and
  reconciliation counts them as erased_rows (the file's physical records still balance). A
  rebuild never brings the customer back.
-#}

{% macro erased_reason() %}erased_on_request{% endmacro %}

{# The suppression list's path, '' when nothing was erased. #}
{% macro erased_customers_file() %}{{ return(env_var('PARITY_ERASED_CUSTOMERS_FILE', '')) }}{% endmacro %}

{# The list as a relation with one column, key_sha256 (the header line is no digest: it matches nothing). #}
{% macro erased_keys_relation(file) %}{{ return(adapter.dispatch('erased_keys_relation', 'parity')(file)) }}{% endmacro %}
{% macro default__erased_keys_relation(file) -%}
select distinct key_sha256 from read_csv('{{ file | replace("'", "''") }}', header = true, auto_detect = false,
    columns = {'key_sha256': 'VARCHAR', 'added_at': 'VARCHAR'})
{%- endmacro %}
{% macro spark__erased_keys_relation(file) -%}
select distinct _c0 as key_sha256 from csv.`{{ file }}`
{%- endmacro %}

{#
  Wraps a staged select (the caller) whose output columns are `columns`: rows of a suppressed
  customer become tombstones (see above). Without erasures the select is left as it is.
#}
{% macro suppress_erased(columns) %}
{%- set file = erased_customers_file() -%}
{%- set kept = ['client_id', 'source_file', 'line_number', 'physical_lines'] -%}
{#- unit tests run on their own fictional fixture rows, whose ids may equal a real erased key -#}
{%- if file == '' or model.resource_type == 'unit_test' -%}
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
    -- a join, not `in (subquery)`: Spark allows predicate subqueries only in filters
    select staged.*, erased.key_sha256 is not null as is_erased
    from (
{{ caller() }}
    ) as staged
    left join ({{ erased_keys_relation(file) }}) as erased
        on erased.key_sha256 = {{ sha256_hex('staged.customer_id') }}
) as marked
{%- endif -%}
{% endmacro %}
