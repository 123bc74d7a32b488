-- Every accepted transaction record of every client. Exact and near duplicates (the same
-- transaction id re-sent in the same arrival batch) get duplicate_rank > 1; a later arrival
-- of the same id is a correction (a new version), not a duplicate.
with

{% for client in var('clients') %}
{{ client }}_transactions as (
    select * from {{ ref('stg_' ~ client ~ '__transactions') }}
    where quarantine_reason is null
),
{% endfor %}

unioned as (
    {% for client in var('clients') %}
    select
        client_id, transaction_id, customer_id, source_customer_id, transaction_type, category,
        currency, amount_local, amount_usd, transacted_at, loaded_at, raw_record
    from {{ client }}_transactions
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        *,
        row_number() over (
            partition by client_id, transaction_id, loaded_at
            order by transacted_at, amount_usd, customer_id, category, transaction_type, raw_record
        ) as duplicate_rank
    from unioned
)

select * from final
