-- Every client with a timeline has feature rows at its own last snapshot (its end, the last
-- grid point at or before its watermark) and at its first one, no more and no less: the per-client
-- form of a recency test. A client's first customer exists from its first snapshot to its end.
with features as (
    select client_id, min(snapshot_at) as oldest_at, max(snapshot_at) as newest_at
    from {{ ref('customer_features_weekly') }}
    group by client_id
)

select watermarks.client_id, watermarks.first_snapshot_at, watermarks.last_snapshot_at,
    features.oldest_at, features.newest_at
from {{ ref('client_watermarks') }} as watermarks
full outer join features on features.client_id = watermarks.client_id
where (coalesce(watermarks.n_snapshots, 0) > 0 or features.client_id is not null)
    and (features.newest_at is distinct from watermarks.last_snapshot_at
        or features.oldest_at is distinct from watermarks.first_snapshot_at)
