-- dune's purchase log: fixed-width lines read by the audited record reader (fixed_width_records:
-- file, line number and the line's hash for every rejected line), ids derived from the line,
-- arrival from the declared monthly drop (see _dune__sources.yml and the README's onboarding
-- section); value formats and the id rule in vars.parsing.dune (dbt_project.yml).
{%- set options = parse_options('dune', 'purchases') %}
{% set layout = [('customer', 1, 14), ('purchased_at', 15, 16), ('amount', 32, 14),
                 ('category', 47, 40)] %}

{% set fields = ['customer', 'purchased_at', 'amount', 'category'] %}

with source as (
    select * from {{ fixed_width_records(source('dune', 'purchases'), layout) }} as records
),

-- an incremental run reads only the lines it re-parses: identical lines before them are counted
-- from the kept rows' ids (none on a full run)
earlier as (
    {{ earlier_occurrences() }}
),

numbered as (
    select source.*, coalesce(earlier.earlier_occurrences, 0) as earlier_occurrences
    from source
    left join earlier on earlier.row_hash = {{ line_fields_hash(fields) }}
),

parsed as (
    select
        'dune' as client_id,
        '{{ options.get('file', '') }}' as source_file,
        line_number,
        physical_lines,
        raw_line,
        record_problem,
        -- the occurrence number counts identical lines in file order: an appended repeat never
        -- renumbers an earlier line (incremental staging keeps the earlier lines' rows)
        {{ row_hash_id(fields, order_by='line_number', earlier='earlier_occurrences') }} as transaction_id,
        {{ normalised_customer_id('dune', 'customer') }} as source_customer_id,
        {{ customer_id_is_well_formed('dune', 'customer') }} as is_customer_id_well_formed,
        {{ customer_id_is_test_account('customer') }} as is_test_account,
        'purchase' as transaction_type,
        category,
        'CAD' as currency,
        {{ strict_decimal('amount', options) }} as amount_local,
        {{ decimal_problem('amount', options) }} as amount_problem,
        {{ strict_timestamp('purchased_at', timestamp_spec(options, 'purchased_at')) }} as transacted_at,
        {{ timestamp_problem('purchased_at', timestamp_spec(options, 'purchased_at'), 'unparseable_date') }} as transacted_at_problem,
        left(raw_line, {{ var('raw_record_chars') }}) as raw_record
    from numbered
),

arrived as (
    select
        *,
        {{ declared_arrival('transacted_at', 'dune', 'purchases') }} as loaded_at
    from parsed
),

checked as (
    -- a declared arrival is derived from the event: one after the build is the event's fault
    select *, {{ arrival_after_build('loaded_at') }} as loaded_at_problem
    from arrived
)

{{ stage_transactions('checked', audited=true) }}
