-- No feature row or label of a client lies after its own watermark: snapshots (and as-of times)
-- at or before its last snapshot, label windows ending at or before the watermark itself.
select 'customer_features_weekly' as model, features.customer_id, features.snapshot_at as at
from {{ ref('customer_features_weekly') }} as features
left join {{ ref('client_watermarks') }} as watermarks on watermarks.client_id = features.client_id
where watermarks.client_id is null or features.snapshot_at > watermarks.last_snapshot_at
union all
select 'churn_labels', labels.customer_id, labels.label_window_end_at
from {{ ref('churn_labels') }} as labels
left join {{ ref('client_watermarks') }} as watermarks on watermarks.client_id = labels.client_id
where watermarks.client_id is null or labels.label_window_end_at > watermarks.watermark_at
