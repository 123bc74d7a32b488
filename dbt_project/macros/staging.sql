{#-
  Shared staging logic. Each client's staging model only maps its raw columns onto the
  canonical names in a `parsed` CTE; these macros add the canonical keys, currency
  normalisation and the quarantine reason, so every client is judged by the same rules.
  A row with a non-null `quarantine_reason` is rejected: it goes to the client's quarantine
  model and nowhere else.
-#}

{#
  Audited staging (`audited=true`, what csv_records / jsonl_records give, see
  macros/raw_records.sql): `parsed` also carries source_file, line_number, physical_lines,
  raw_line (hashed into raw_line_sha256 for rejected rows only), record_problem (NULL = the record is well-formed; replaces
  is_record_parseable) and, per parsed value, a *_problem column (NULL when the text parsed
  strictly as declared, else its reason code): loaded_at_problem, signed_up_at_problem /
  transacted_at_problem, amount_problem. Without it (derived or hand-shaped relations) those
  columns are NULL and is_record_parseable decides.
  Either way raw_record (the record's non-PII text) is redacted for every rejected row.
#}
{% macro _audit_columns(parsed, audited) %}
    {%- if audited %}
    {{ parsed }}.source_file,
    {{ parsed }}.line_number,
    {{ parsed }}.physical_lines,
    {{ parsed }}.raw_line,
    {%- else %}
    cast(null as {{ dbt.type_string() }}) as source_file,
    cast(null as {{ dbt.type_bigint() }}) as line_number,
    cast(null as {{ dbt.type_bigint() }}) as physical_lines,
    cast(null as {{ dbt.type_string() }}) as raw_line,
    {%- endif %}
{%- endmacro %}

{# Reasons checked first: the record itself is unusable. #}
{% macro _record_reasons(parsed, audited) %}
        {%- if audited %}
        when {{ parsed }}.record_problem is not null then {{ parsed }}.record_problem
        {%- else %}
        when not {{ parsed }}.is_record_parseable then 'malformed_record'
        {%- endif %}
        -- an e-mail where none belongs (an id, a category, a record pasted into the wrong file)
        when case when {{ parsed }}.raw_record like '%@%' then {{ contains_match(parsed ~ '.raw_record', email_pattern()) }} else false end
            then 'pii_in_field'
{%- endmacro %}

{# Arrival checks of an audited relation: parsed strictly, and not after the build itself. #}
{% macro _arrival_reasons(parsed, audited) %}
        {%- if audited %}
        when {{ parsed }}.loaded_at_problem is not null then {{ parsed }}.loaded_at_problem
        {%- endif %}
        when {{ parsed }}.loaded_at is null then 'unparseable_loaded_at'
        {%- if audited %}
        -- no record can arrive after we build (plus a tolerance for clocks that differ)
        when {{ parsed }}.loaded_at > {{ add_hours(build_time(), var('build_time_tolerance_hours')) }} then 'arrival_after_build_time'
        {%- endif %}
{%- endmacro %}

{# Event-time checks of an audited relation (`column`: signed_up_at or transacted_at). #}
{% macro _event_reasons(parsed, column, audited) %}
        {%- if audited %}
        when {{ parsed }}.{{ column }}_problem is not null then {{ parsed }}.{{ column }}_problem
        {%- endif %}
        when {{ parsed }}.{{ column }} is null then 'unparseable_date'
{%- endmacro %}

{# The instant the build runs (var build_time overrides it, for reproducible tests). #}
{#- The marker comment lets parity.ingest.events judge a pushed event against its own intake time
    with this model's compiled SQL (the build's time is fixed in it). -#}
{% macro build_time() -%}
/* parity:build_time */ {{ utc_timestamp_literal(var('build_time', none) or run_started_at.strftime('%Y-%m-%dT%H:%M:%S+00:00')) }}
{%- endmacro %}

{# Output columns of a staged relation after `judged`: a rejected row's raw record redacted and
   its raw text hashed (finds the line; hashing every accepted row too cost ~1 us a row). #}
{% macro _redacted_raw_record() -%}
case when quarantine_reason is not null then {{ sha256_hex('raw_line') }} end as raw_line_sha256,
    case when quarantine_reason is null then raw_record else {{ redact_pii('raw_record') }} end as raw_record
{%- endmacro %}

{#
  Expects a relation `parsed` with: client_id, is_record_parseable (or the audited columns above),
  source_customer_id, is_customer_id_well_formed, is_test_account, email, country, birth_year,
  acquisition_channel, signed_up_at, loaded_at, raw_record (non-PII raw text for the quarantine).
#}
{% macro stage_customers(parsed, audited=false) %}
{%- if audited %}{% do config(**staging_materialization('signed_up_at')) %}{% endif %}
{{ onboarded_only() }}
{% call suppress_erased(['client_id', 'customer_id', 'source_customer_id', 'email_hash', 'country',
    'acquisition_channel', 'birth_year', 'is_test_account', 'signed_up_at', 'loaded_at', 'source_file',
    'line_number', 'physical_lines', 'raw_line_sha256', 'raw_record', 'quarantine_reason']) %}
select
    client_id, customer_id, source_customer_id, email_hash, country, acquisition_channel,
    birth_year, is_test_account, signed_up_at, loaded_at,
    source_file, line_number, physical_lines,
    {{ _redacted_raw_record() }},
    quarantine_reason
from (
select
    -- ids
    {{ parsed }}.client_id,
    {{ parsed }}.client_id || ':' || {{ parsed }}.source_customer_id as customer_id,
    {{ parsed }}.source_customer_id,
    -- strings (PII is hashed here and never leaves staging in clear text)
    {{ hash_pii(parsed ~ '.email') }} as email_hash,
    upper(nullif({{ trim_text(parsed ~ '.country') }}, '')) as country,
    lower(nullif({{ trim_text(parsed ~ '.acquisition_channel') }}, '')) as acquisition_channel,
    -- numerics
    case when {{ parsed }}.birth_year between 1900 and 2025 then {{ parsed }}.birth_year end as birth_year,
    -- booleans
    {{ parsed }}.is_test_account,
    -- timestamps
    {{ parsed }}.signed_up_at,
    {{ parsed }}.loaded_at,
    -- audit
    {{ _audit_columns(parsed, audited) }}
    {{ parsed }}.raw_record,
    case
        {{- _record_reasons(parsed, audited) }}
        when {{ parsed }}.source_customer_id is null then 'missing_customer_id'
        when {{ parsed }}.is_test_account then 'test_account'
        when not {{ parsed }}.is_customer_id_well_formed then 'malformed_customer_id'
        {{- _arrival_reasons(parsed, audited) }}
        {{- _event_reasons(parsed, 'signed_up_at', audited) }}
        {%- if audited %}
        when {{ parsed }}.signed_up_at < {{ utc_timestamp_literal(var('earliest_valid_date')) }} then 'date_out_of_range'
        {%- endif %}
        when {{ parsed }}.signed_up_at > {{ add_hours(parsed ~ '.loaded_at', var('future_tolerance_hours')) }} then 'future_date'
    end as quarantine_reason
from {{ parsed }}
{%- if audited %}{{ incremental_staging_filter(parsed, 'signed_up_at') }}{% endif %}
) as judged
{% endcall %}
{% endmacro %}

{#
  Expects a relation `parsed` with: client_id, is_record_parseable (or the audited columns above),
  transaction_id, source_customer_id, is_customer_id_well_formed, is_test_account,
  transaction_type ('purchase'|'refund'|null), category, currency, amount_local (non-negative
  when valid), transacted_at, loaded_at, raw_record.
  `parse_reason` (optional): a column of `parsed` holding a reason found while parsing (e.g.
  'ambiguous_amount', or 'future_date' for a declared arrival after the build), checked after
  the date rules. Amounts of exactly 0 follow the client's zero-amount rule (`zero_amount_rule`).
#}
{% macro stage_transactions(parsed, parse_reason=none, audited=false) %}
{%- if audited %}{% do config(**staging_materialization('transacted_at')) %}{% endif %}
{{ onboarded_only() }}
{% call suppress_erased(['client_id', 'transaction_id', 'customer_id', 'source_customer_id', 'transaction_type',
    'category', 'currency', 'amount_flag', 'amount_local', 'amount_usd', 'is_test_account', 'transacted_at',
    'loaded_at', 'source_file', 'line_number', 'physical_lines', 'raw_line_sha256', 'raw_record',
    'quarantine_reason']) %}
select
    client_id, transaction_id, customer_id, source_customer_id, transaction_type, category,
    currency, amount_flag, amount_local, amount_usd, is_test_account, transacted_at, loaded_at,
    source_file, line_number, physical_lines,
    {{ _redacted_raw_record() }},
    quarantine_reason
from (
select
    -- ids
    {{ parsed }}.client_id,
    {{ parsed }}.transaction_id,
    {{ parsed }}.client_id || ':' || {{ parsed }}.source_customer_id as customer_id,
    {{ parsed }}.source_customer_id,
    -- strings
    {{ parsed }}.transaction_type,
    lower(nullif({{ trim_text(parsed ~ '.category') }}, '')) as category,
    {{ parsed }}.currency,
    -- kept under the client's `flag` rule for zero amounts; counted as flagged_rows in reconciliation
    case when {{ parsed }}.amount_local = 0 and {{ zero_amount_rule(parsed ~ '.client_id') }} = 'flag'
        then 'zero_amount' end as amount_flag,
    -- numerics
    {{ parsed }}.amount_local,
    cast({{ parsed }}.amount_local * rates.usd_per_unit as double) as amount_usd,
    -- booleans
    {{ parsed }}.is_test_account,
    -- timestamps
    {{ parsed }}.transacted_at,
    {{ parsed }}.loaded_at,
    -- audit
    {{ _audit_columns(parsed, audited) }}
    {{ parsed }}.raw_record,
    case
        {{- _record_reasons(parsed, audited) }}
        when {{ parsed }}.transaction_id is null then 'missing_transaction_id'
        when not {{ matches(parsed ~ '.transaction_id', var('transaction_id_pattern')) }} then 'malformed_transaction_id'
        when {{ parsed }}.source_customer_id is null then 'missing_customer_id'
        when {{ parsed }}.is_test_account then 'test_account'
        when not {{ parsed }}.is_customer_id_well_formed then 'malformed_customer_id'
        -- event before arrival: a declared arrival is derived from the event time, so an
        -- unparseable event leaves both NULL and the event is what is wrong
        {{- _event_reasons(parsed, 'transacted_at', audited) }}
        {{- _arrival_reasons(parsed, audited) }}
        {%- if audited %}
        when {{ parsed }}.transacted_at < {{ utc_timestamp_literal(var('earliest_valid_date')) }} then 'date_out_of_range'
        {%- endif %}
        when {{ parsed }}.transacted_at > {{ add_hours(parsed ~ '.loaded_at', var('future_tolerance_hours')) }} then 'future_date'
        {% if parse_reason is not none -%}
        when {{ parsed }}.{{ parse_reason }} is not null then {{ parsed }}.{{ parse_reason }}
        {% endif -%}
        when {{ parsed }}.transaction_type is null then 'unknown_transaction_type'
        {%- if audited %}
        when {{ parsed }}.amount_problem is not null then {{ parsed }}.amount_problem
        {%- endif %}
        when {{ parsed }}.amount_local is null then 'unparseable_amount'
        when {{ parsed }}.amount_local < 0 then 'negative_amount'
        when {{ parsed }}.amount_local = 0 and {{ zero_amount_rule(parsed ~ '.client_id') }} = 'quarantine' then 'zero_amount'
        when rates.usd_per_unit is null then 'unknown_currency'
        when {{ parsed }}.amount_local * rates.usd_per_unit > {{ var('absurd_amount_threshold') }} then 'absurd_amount'
    end as quarantine_reason
from {{ parsed }}
left join {{ ref('currency_rates') }} as rates
    on {{ parsed }}.currency = rates.currency
{%- if audited %}{{ incremental_staging_filter(parsed, 'transacted_at') }}{% endif %}
) as judged
{% endcall %}
{% endmacro %}

{#
  A client's quarantine: every raw record that was rejected, in staging or later (orphans),
  with its reason, a redacted raw record (no e-mail, phone number or name in clear text: ids may
  hold them too, so record_id and source_customer_id are redacted as well) and what finds the
  line in the raw file: source_file, line_number (first physical line) and raw_line_sha256.
  Used as the whole body of `quarantine_<client>`.
#}
{% macro quarantine_for_client(client) %}
{%- do config(**quarantine_materialization(client)) %}
{{ onboarded_only(client) }}
with customers as {{ cte_inlined() }} (
    select * from {{ ref('stg_' ~ client ~ '__customers') }}
),
transactions as {{ cte_inlined() }} (
    select * from {{ ref('stg_' ~ client ~ '__transactions') }}
),
orphans as {{ cte_inlined() }} (
    select
        int_transactions_orphaned.*,
        {{ source_table_of('int_transactions_orphaned', 'transactions') }} as source_table
    from {{ ref('int_transactions_orphaned') }} as int_transactions_orphaned
    where client_id = '{{ client }}'
),
-- the orphans this run recomputes (an incremental run: macros/incremental.sql, quarantine section)
recomputed_orphans as {{ cte_inlined() }} (
    select * from orphans
    where source_table = 'events' or {{ quarantine_orphans_recomputed('transaction_id', client) }}
),
-- the client's pushed events (the event log holds every client's)
events as {{ cte_inlined() }} (
    select * from {{ ref('stg_events__transactions') }}
    where client_id = '{{ client }}'
),
-- orphans were accepted by staging: their file and line are found again there (accepted rows
-- carry no hash of their text)
orphan_lines as (
    select
        orphans.transaction_id, orphans.loaded_at, orphans.raw_record,
        min(transactions.source_file) as source_file,
        min(transactions.line_number) as line_number
    from recomputed_orphans as orphans
    inner join (
        select transaction_id, loaded_at, source_file, line_number, quarantine_reason from transactions
        union all
        select transaction_id, loaded_at, source_file, line_number, quarantine_reason from events
    ) as transactions
        on transactions.transaction_id = orphans.transaction_id
        and transactions.loaded_at = orphans.loaded_at
        and transactions.quarantine_reason is null
    group by orphans.transaction_id, orphans.loaded_at, orphans.raw_record
),
rejected as (
    select client_id, 'customers' as source_table, source_customer_id as record_id,
           source_customer_id, quarantine_reason, raw_record, loaded_at,
           source_file, line_number, raw_line_sha256
    from customers where quarantine_reason is not null and quarantine_reason <> '{{ erased_reason() }}'
        and {{ quarantine_lines_recomputed('customers', client) }}
    union all
    select client_id, 'transactions' as source_table, transaction_id as record_id,
           source_customer_id, quarantine_reason, raw_record, loaded_at,
           source_file, line_number, raw_line_sha256
    from transactions where quarantine_reason is not null and quarantine_reason <> '{{ erased_reason() }}'
        and {{ quarantine_lines_recomputed('transactions', client) }}
    union all
    select client_id, 'events' as source_table, transaction_id as record_id,
           source_customer_id, quarantine_reason, raw_record, loaded_at,
           source_file, line_number, raw_line_sha256
    from events where quarantine_reason is not null
    union all
    select orphans.client_id, orphans.source_table, orphans.transaction_id as record_id,
           orphans.source_customer_id, orphans.quarantine_reason, orphans.raw_record, orphans.loaded_at,
           orphan_lines.source_file, orphan_lines.line_number,
           cast(null as {{ dbt.type_string() }}) as raw_line_sha256
    from recomputed_orphans as orphans
    left join orphan_lines
        on orphan_lines.transaction_id = orphans.transaction_id
        and orphan_lines.loaded_at = orphans.loaded_at
        and orphan_lines.raw_record = orphans.raw_record
),
final as (
    select
        client_id,
        source_table,
        {{ redact_id('record_id') }} as record_id,
        {{ redact_id('source_customer_id') }} as source_customer_id,
        quarantine_reason,
        {{ retained_sample('raw_record', 'loaded_at') }} as raw_record,
        loaded_at,
        source_file,
        line_number,
        raw_line_sha256
    from rejected
)
select * from final
{% endmacro %}

{#
  The zero-amount rule of the client in column `client_column`, as SQL text: 'quarantine'
  (reason zero_amount) or 'flag' (kept, amount_flag = 'zero_amount'). Default: var
  `zero_amount_rule`; per client: var `zero_amount_rule_by_client` ({client: rule}).
#}
{% macro zero_amount_rule(client_column) -%}
{%- set default = var('zero_amount_rule', 'quarantine') -%}
{%- set by_client = var('zero_amount_rule_by_client', {}) or {} -%}
{%- for client, rule in ([('(default)', default)] + (by_client.items() | list)) -%}
{%- if rule not in ('quarantine', 'flag') -%}
{{ exceptions.raise_compiler_error("dbt_project.yml vars zero_amount_rule / zero_amount_rule_by_client: the rule for " ~ client ~ " must be 'quarantine' or 'flag', got " ~ rule) }}
{%- endif -%}
{%- endfor -%}
{%- if by_client -%}
(case {{ client_column }}{% for client, rule in by_client.items() %} when '{{ client }}' then '{{ rule }}'{% endfor %} else '{{ default }}' end)
{%- else -%}
'{{ default }}'
{%- endif -%}
{%- endmacro %}

{#
  Customers of a client that sends no customer file, derived from its accepted staged
  transactions (the whole body of `stg_<client>__customers`): one row per customer id, with the
  canonical columns; attributes the transactions do not carry (e-mail, country, channel, birth
  year) are NULL. The customer becomes known with its first transaction's arrival
  (loaded_at = first arrival), and signed_up_at is the earliest purchase known at that moment
  (not a later-arriving older one, which was not known then). raw_record says it is derived.
#}
{% macro stage_customers_from_transactions(client) %}
{{ onboarded_only(client) }}
with transactions as (
    select * from {{ ref('stg_' ~ client ~ '__transactions') }}
    where quarantine_reason is null
),

first_arrivals as (
    select client_id, source_customer_id, min(loaded_at) as loaded_at
    from transactions
    group by client_id, source_customer_id
),

derived as (
    select
        first_arrivals.client_id,
        first_arrivals.source_customer_id,
        min(transactions.transacted_at) as signed_up_at,
        first_arrivals.loaded_at
    from first_arrivals
    inner join transactions
        on transactions.client_id = first_arrivals.client_id
        and transactions.source_customer_id = first_arrivals.source_customer_id
        and transactions.loaded_at = first_arrivals.loaded_at
    group by first_arrivals.client_id, first_arrivals.source_customer_id, first_arrivals.loaded_at
),

parsed as (
    select
        client_id,
        true as is_record_parseable,
        source_customer_id,
        true as is_customer_id_well_formed,
        false as is_test_account,
        cast(null as {{ dbt.type_string() }}) as email,
        cast(null as {{ dbt.type_string() }}) as country,
        cast(null as {{ dbt.type_bigint() }}) as birth_year,
        cast(null as {{ dbt.type_string() }}) as acquisition_channel,
        signed_up_at,
        loaded_at,
        'derived from transactions: ' || source_customer_id as raw_record
    from derived
)

{{ stage_customers('parsed') }}
{% endmacro %}

{#
  A customers-only drop (no transactions): the customers are staged with the shared rules, and
  every one that passes them is set aside with reason `not_scorable_without_transactions` —
  features, labels and scores come from purchases, so a customer without any would be scored on
  an empty history. They stay in the client's quarantine (raw_record keeps the client's own
  columns, e.g. its churn flag) and are counted in the reconciliation. Body of
  `stg_<client>__customers`; pair it with `no_transactions()` as `stg_<client>__transactions`.
#}
{% macro stage_customers_only(parsed) %}
{{ onboarded_only() }}
select
    client_id, customer_id, source_customer_id, email_hash, country, acquisition_channel,
    birth_year, is_test_account, signed_up_at, loaded_at,
    source_file, line_number, physical_lines, raw_line_sha256, raw_record,
    coalesce(quarantine_reason, 'not_scorable_without_transactions') as quarantine_reason
from (
    {{ stage_customers(parsed) }}
) as staged
{% endmacro %}

{# The staged transactions of a client that sends none: the canonical columns, no rows. #}
{% macro no_transactions() %}
with parsed as (
    select
        cast(null as {{ dbt.type_string() }}) as client_id,
        false as is_record_parseable,
        cast(null as {{ dbt.type_string() }}) as transaction_id,
        cast(null as {{ dbt.type_string() }}) as source_customer_id,
        false as is_customer_id_well_formed,
        false as is_test_account,
        cast(null as {{ dbt.type_string() }}) as transaction_type,
        cast(null as {{ dbt.type_string() }}) as category,
        cast(null as {{ dbt.type_string() }}) as currency,
        cast(null as double) as amount_local,
        {{ parse_iso_timestamp('null') }} as transacted_at,
        {{ parse_iso_timestamp('null') }} as loaded_at,
        cast(null as {{ dbt.type_string() }}) as raw_record
    where 1 = 0
)

{{ stage_transactions('parsed') }}
{% endmacro %}
