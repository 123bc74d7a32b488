{#
  The keys (client_id, transaction_id, loaded_at) of the accepted pushed events (the event log,
  stg_events__transactions): what tells an event apart from a client file's row downstream of the
  union, where both are transactions. loaded_at is the instant the platform accepted the event
  (microseconds), so a client file's row never shares the key.
#}
{% macro pushed_event_keys() %}
    select distinct client_id, transaction_id, loaded_at
    from {{ ref('stg_events__transactions') }}
    where quarantine_reason is null
{% endmacro %}

{# 'events' for a row of `relation` that is a pushed event, else `otherwise` (SQL text). #}
{% macro source_table_of(relation, otherwise) -%}
case when exists (
    select 1 from ({{ pushed_event_keys() }}) as pushed
    where pushed.client_id = {{ relation }}.client_id
        and pushed.transaction_id = {{ relation }}.transaction_id
        and pushed.loaded_at = {{ relation }}.loaded_at
) then 'events' else '{{ otherwise }}' end
{%- endmacro %}
