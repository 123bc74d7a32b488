-- Every accepted customer record of every client, ranked newest-first per customer.
-- A customer may be re-sent (exact or near duplicate, or an updated record): rank 1 is
-- the current record, the others are superseded duplicates.
with

{% for client in var('clients') %}
{{ client }}_customers as (
    select * from {{ ref('stg_' ~ client ~ '__customers') }}
    where quarantine_reason is null
),
{% endfor %}

unioned as (
    {% for client in var('clients') %}
    select
        client_id, customer_id, source_customer_id, email_hash, country, acquisition_channel,
        birth_year, signed_up_at, loaded_at
    from {{ client }}_customers
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        *,
        min(loaded_at) over (partition by customer_id) as first_loaded_at,
        cast(row_number() over (
            partition by customer_id
            order by loaded_at desc nulls last, signed_up_at nulls last, email_hash nulls last, country nulls last,
                acquisition_channel nulls last, birth_year nulls last
        ) as bigint) as record_rank
    from unioned
)

select * from final
