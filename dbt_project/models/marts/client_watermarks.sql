{{ config(materialized='external', location=mart_location('client_watermarks')) }}

-- One row per client with a timeline: its watermark (the time up to which its data is known
-- complete, by the rule declared in vars.client_watermarks; default newest_arrival = midnight UTC
-- after its newest arrival) and the span of its weekly snapshots. Serving, batch scoring and
-- monitoring read it to say how fresh a client's features can be.

with timelines as (
    select * from {{ ref('int_client_timelines') }}
),

final as (
    select
        -- ids
        client_id,
        -- strings
        watermark_rule,
        -- numerics
        n_snapshots,
        -- timestamps
        watermark_at,
        case when n_snapshots > 0
            then {{ add_days('snapshot_end', '-7 * (n_snapshots - 1)') }}
        end as first_snapshot_at,
        case when n_snapshots > 0 then snapshot_end end as last_snapshot_at,
        newest_loaded_at,
        newest_transacted_at
    from timelines
)

select * from final
