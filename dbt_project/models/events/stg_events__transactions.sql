{{ config(materialized='table', schema='staging') }}
{#- Pushed events, staged by the same shared rules as every client's transactions
    (stage_transactions). In its own folder, not staging/<client>: the log is the platform's, not
    a client's drop. parity.ingest.events runs this model's compiled SQL on each pushed
    batch before accepting it, so an event is judged here, once, whether pushed or built. -#}
{%- set options = parse_options('events', 'transactions') -%}
{%- set keys = ['event_id', 'customer_id', 'transaction_type', 'amount', 'currency', 'category', 'transacted_at', 'accepted_at'] -%}
with source as (
    select * from {{ jsonl_records(source('events', 'transactions'), keys) }} as records
),

fields as (
    select
        *,
        {{ list_element('field_values', 1) }} as event_id,
        {{ list_element('field_values', 2) }} as customer_key,
        {{ list_element('field_values', 3) }} as kind,
        {{ list_element('field_values', 4) }} as amount,
        {{ list_element('field_values', 5) }} as currency,
        {{ list_element('field_values', 6) }} as category,
        {{ list_element('field_values', 7) }} as transacted_at,
        {{ list_element('field_values', 8) }} as accepted_at,
        {{ list_element('field_types', 4) }} as amount_type
    from source
),

parsed as (
    select
        -- the client is the prefix of the platform key '<client>:<customer id>' (the key
        -- /v1/predict takes); no prefix leaves the id malformed
        case when {{ text_position(trim_text('customer_key'), "':'") }} > 1
            then lower(split_part({{ trim_text('customer_key') }}, ':', 1)) else '' end as client_id,
        '{{ options.get('file', '') }}' as source_file,
        line_number,
        physical_lines,
        raw_line,
        record_problem,
        nullif({{ trim_text('event_id') }}, '') as transaction_id,
        -- the id after the prefix, as written (keyed by its client's rule in `keyed`)
        substr({{ trim_text('customer_key') }}, {{ text_position(trim_text('customer_key'), "':'") }} + 1) as written_customer_id,
        coalesce({{ matches(trim_text('customer_key'), '[A-Za-z0-9_]+:.+') }}, false) as has_client_prefix,
        case lower({{ trim_text('kind') }}) when 'purchase' then 'purchase' when 'refund' then 'refund' end as transaction_type,
        category,
        upper(nullif({{ trim_text('currency') }}, '')) as currency,
        -- a JSON number in the currency's units: a string or boolean is refused, never guessed
        case when amount_type in ('BIGINT', 'UBIGINT', 'DOUBLE') then {{ try_double('amount') }} end as amount_local,
        case
            when amount_type in ('BIGINT', 'UBIGINT', 'DOUBLE') then null
            when amount_type is null or amount_type = 'NULL' then 'unparseable_amount'
            when amount_type in ('VARCHAR', 'BOOLEAN') then 'wrong_type'
            else 'unparseable_amount'
        end as amount_problem,
        {{ strict_timestamp('transacted_at', timestamp_spec(options, 'transacted_at')) }} as transacted_at,
        {{ timestamp_problem('transacted_at', timestamp_spec(options, 'transacted_at'), 'unparseable_date') }} as transacted_at_problem,
        {{ strict_timestamp('accepted_at', timestamp_spec(options, 'accepted_at')) }} as loaded_at,
        {{ timestamp_problem('accepted_at', timestamp_spec(options, 'accepted_at'), 'unparseable_loaded_at') }} as loaded_at_problem,
        case when record_problem is null
            then concat_ws(' | ', event_id, customer_key, transacted_at, amount, currency, category, kind, accepted_at)
            else left(raw_line, {{ var('raw_record_chars') }}) end as raw_record
    from fields
),

-- the id normalised and checked by its client's declared rule (vars.parsing.<client>.customer_id,
-- macros/customer_ids.sql), the rule its drop files are staged by: 'cora:cr-00025' is the
-- customer 'cora:CR-00025' of cora's files, 'cora:xyz' a malformed cora id
keyed as (
    select
        *,
        {{ normalised_customer_id_by_client('client_id', 'written_customer_id') }} as source_customer_id,
        has_client_prefix and {{ customer_id_is_well_formed_by_client('client_id', 'written_customer_id') }}
            as is_customer_id_well_formed,
        {{ customer_id_is_test_account('written_customer_id') }} as is_test_account
    from parsed
),

checked as (
    select
        *,
        -- events of a client that is not onboarded (vars.clients) have no staging rules to meet
        case when client_id not in ({% for client in var('clients') %}'{{ client }}'{% if not loop.last %}, {% endif %}{% endfor %})
            then 'unknown_client' end as client_problem
    from keyed
)

{{ stage_transactions('checked', parse_reason='client_problem', audited=true) }}
