{{ config(materialized='table') }}

-- Churn scores per customer and batch as-of time, with the customer's profile and whether the
-- row is the customer's latest score: what retention lists and score dashboards build on.

with batch_scores as (
    select * from {{ ref('stg_scores__batch_scores') }}
),

customers as (
    select * from {{ ref('int_customers_deduplicated') }}
),

latest as (
    select
        customer_id,
        max(as_of_at) as latest_as_of_at
    from batch_scores
    group by customer_id
),

final as (
    select
        -- ids
        batch_scores.customer_id,
        batch_scores.client_id,
        batch_scores.source_customer_id,
        batch_scores.segment_id,
        -- strings
        batch_scores.score_status,
        batch_scores.segment_name,
        customers.country,
        customers.acquisition_channel,
        batch_scores.reason_1,
        batch_scores.reason_2,
        batch_scores.reason_3,
        batch_scores.model_version,
        batch_scores.segments_version,
        -- numerics
        batch_scores.churn_score,
        batch_scores.decision_threshold,
        -- booleans
        batch_scores.is_at_risk,
        batch_scores.is_active,
        batch_scores.as_of_at = latest.latest_as_of_at as is_latest,
        -- timestamps
        batch_scores.as_of_at,
        batch_scores.scored_at
    from batch_scores
    inner join latest
        on latest.customer_id = batch_scores.customer_id
    left join customers
        on customers.customer_id = batch_scores.customer_id
)

select * from final
