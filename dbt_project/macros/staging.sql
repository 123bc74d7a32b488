{#-
  Shared staging logic. Each client's staging model only maps its raw columns onto the
  canonical names in a `parsed` CTE; these macros add the canonical keys, currency
  normalisation and the quarantine reason, so every client is judged by the same rules.
  A row with a non-null `quarantine_reason` is rejected: it goes to the client's quarantine
  model and nowhere else.
-#}

{#
  Expects a relation `parsed` with: client_id, is_record_parseable, source_customer_id, is_customer_id_well_formed,
  is_test_account, email, country, birth_year, acquisition_channel, signed_up_at, loaded_at,
  raw_record (non-PII raw text for the quarantine).
#}
{% macro stage_customers(parsed) %}
select
    -- ids
    {{ parsed }}.client_id,
    {{ parsed }}.client_id || ':' || {{ parsed }}.source_customer_id as customer_id,
    {{ parsed }}.source_customer_id,
    -- strings (PII is hashed here and never leaves staging in clear text)
    {{ hash_pii(parsed ~ '.email') }} as email_hash,
    upper(nullif(trim({{ parsed }}.country), '')) as country,
    lower(nullif(trim({{ parsed }}.acquisition_channel), '')) as acquisition_channel,
    -- numerics
    case when {{ parsed }}.birth_year between 1900 and 2025 then {{ parsed }}.birth_year end as birth_year,
    -- booleans
    {{ parsed }}.is_test_account,
    -- timestamps
    {{ parsed }}.signed_up_at,
    {{ parsed }}.loaded_at,
    -- audit
    {{ parsed }}.raw_record,
    case
        when not {{ parsed }}.is_record_parseable then 'malformed_record'
        when {{ parsed }}.source_customer_id is null then 'missing_customer_id'
        when {{ parsed }}.is_test_account then 'test_account'
        when not {{ parsed }}.is_customer_id_well_formed then 'malformed_customer_id'
        when {{ parsed }}.loaded_at is null then 'unparseable_loaded_at'
        when {{ parsed }}.signed_up_at is null then 'unparseable_date'
        when {{ parsed }}.signed_up_at > {{ add_hours(parsed ~ '.loaded_at', var('future_tolerance_hours')) }} then 'future_date'
    end as quarantine_reason
from {{ parsed }}
{% endmacro %}

{#
  Expects a relation `parsed` with: client_id, is_record_parseable, transaction_id, source_customer_id,
  is_customer_id_well_formed, is_test_account, transaction_type ('purchase'|'refund'|null),
  category, currency, amount_local (non-negative when valid), transacted_at, loaded_at, raw_record.
#}
{% macro stage_transactions(parsed) %}
select
    -- ids
    {{ parsed }}.client_id,
    {{ parsed }}.transaction_id,
    {{ parsed }}.client_id || ':' || {{ parsed }}.source_customer_id as customer_id,
    {{ parsed }}.source_customer_id,
    -- strings
    {{ parsed }}.transaction_type,
    lower(nullif(trim({{ parsed }}.category), '')) as category,
    {{ parsed }}.currency,
    -- numerics
    {{ parsed }}.amount_local,
    cast({{ parsed }}.amount_local * rates.usd_per_unit as double) as amount_usd,
    -- booleans
    {{ parsed }}.is_test_account,
    -- timestamps
    {{ parsed }}.transacted_at,
    {{ parsed }}.loaded_at,
    -- audit
    {{ parsed }}.raw_record,
    case
        when not {{ parsed }}.is_record_parseable then 'malformed_record'
        when {{ parsed }}.transaction_id is null then 'missing_transaction_id'
        when {{ parsed }}.source_customer_id is null then 'missing_customer_id'
        when {{ parsed }}.is_test_account then 'test_account'
        when not {{ parsed }}.is_customer_id_well_formed then 'malformed_customer_id'
        when {{ parsed }}.loaded_at is null then 'unparseable_loaded_at'
        when {{ parsed }}.transacted_at is null then 'unparseable_date'
        when {{ parsed }}.transacted_at > {{ add_hours(parsed ~ '.loaded_at', var('future_tolerance_hours')) }} then 'future_date'
        when {{ parsed }}.transaction_type is null then 'unknown_transaction_type'
        when {{ parsed }}.amount_local is null then 'unparseable_amount'
        when {{ parsed }}.amount_local < 0 then 'negative_amount'
        when rates.usd_per_unit is null then 'unknown_currency'
        when {{ parsed }}.amount_local * rates.usd_per_unit > {{ var('absurd_amount_threshold') }} then 'absurd_amount'
    end as quarantine_reason
from {{ parsed }}
left join {{ ref('currency_rates') }} as rates
    on {{ parsed }}.currency = rates.currency
{% endmacro %}

{#
  A client's quarantine: every raw row that was rejected, in staging or later (orphans),
  with its reason. Used as the whole body of `quarantine_<client>`.
#}
{% macro quarantine_for_client(client) %}
with customers as (
    select * from {{ ref('stg_' ~ client ~ '__customers') }}
),
transactions as (
    select * from {{ ref('stg_' ~ client ~ '__transactions') }}
),
orphans as (
    select * from {{ ref('int_transactions_orphaned') }}
),
final as (
    select client_id, 'customers' as source_table, source_customer_id as record_id,
           source_customer_id, quarantine_reason, raw_record, loaded_at
    from customers where quarantine_reason is not null
    union all
    select client_id, 'transactions' as source_table, transaction_id as record_id,
           source_customer_id, quarantine_reason, raw_record, loaded_at
    from transactions where quarantine_reason is not null
    union all
    select client_id, 'transactions' as source_table, transaction_id as record_id,
           source_customer_id, quarantine_reason, raw_record, loaded_at
    from orphans where client_id = '{{ client }}'
)
select * from final
{% endmacro %}
