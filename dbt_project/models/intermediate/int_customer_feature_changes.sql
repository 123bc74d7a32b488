{{ config(**feature_changes_materialization()) }}

-- Which feature rows this build must compute, per customer (the incremental feature mart,
-- README "Incremental builds"). A snapshot at t sees only what was known at t, and snapshots sit
-- on a fixed grid, so a customer's row at an old snapshot changes only when the data says so:
-- its attributes changed (the newest record is taken onto every snapshot), one of its
-- transaction versions appeared, changed or went away (a backdated arrival, a correction
-- superseding an old version, an orphan finding its customer), or its client's grid moved in
-- another way than by new grid points at its end. Such a customer is recomputed whole
-- (is_recomputed_whole) -- unless only versions no old snapshot sees changed (a day's purchases,
-- a late row or a correction arriving after the previous grid end: visible_versions_hash, the
-- versions as the snapshots up to the grid end see them, is the previous build's); any other
-- customer of a client whose grid gained new points gets those new snapshots only; every other
-- row is the previous build's. Nothing is assumed about how late data may arrive: the previous
-- build's fingerprint of each customer's inputs is compared with this build's.
--
-- The table keeps, per customer ever seen: the fingerprint (customer_hash, versions_hash,
-- n_versions, visible_versions_hash), the client's grid (snapshot_end, first_snapshot_at) and the previous build's,
-- is_changed with its change_reason, first_week (the customer's spine, int_customer_snapshot_spans)
-- and rebuild_week:
-- rows at weeks_before_end <= rebuild_week are computed by this build, older ones up to
-- first_week are the previous build's (-1: none computed; NULL: no snapshot, no row). On a full
-- build every customer is changed.

{%- set previous_run = incremental_run() %}

with customers as (
    select * from {{ ref('int_customers_deduplicated') }}
),

transactions as (
    select * from {{ ref('int_transactions_versioned') }}
),

timelines as (
    select * from {{ ref('int_client_timelines') }}
),

customer_spans as (
    select * from {{ ref('int_customer_snapshot_spans') }}
),

grid_ends as (
    -- per client: this build's grid end and, on an incremental run, the previous build's
    select
        timelines.client_id,
        timelines.snapshot_end
        {%- if previous_run %},
        previous_ends.snapshot_end as previous_snapshot_end
        {%- endif %}
    from timelines
    {%- if previous_run %}
    left join (
        select client_id, max(snapshot_end) as snapshot_end from {{ this }} group by client_id
    ) as previous_ends on previous_ends.client_id = timelines.client_id
    {%- endif %}
),

hashed_versions as (
    -- each version's fingerprint, hashed once (visible_version_fingerprint reuses it)
    select
        transactions.*,
        {{ fingerprint_hash(version_fingerprint_columns('transactions') + ['transactions.superseded_at']) }} as version_hash
    from transactions
),

version_fingerprints as (
    -- every column a feature row reads from a version; a sum of hashes does not depend on order.
    -- visible_versions_hash: only what the snapshots up to the client's grid end can see
    -- (macros/feature_changes.sql visible_version_fingerprint); the next build compares it with the
    -- same fingerprint of its own versions at this build's grid end (previous_end_versions_hash)
    select
        versions.customer_id,
        count(*) as n_versions,
        {{ fingerprint_sum('versions.version_hash') }} as versions_hash,
        {{ fingerprint_sum(visible_version_fingerprint('versions', 'grid_ends.snapshot_end', 'versions.version_hash')) }} as visible_versions_hash
        {%- if previous_run %},
        -- (only where the end moved: else it is visible_versions_hash)
        {{ fingerprint_sum('case when grid_ends.previous_snapshot_end is distinct from grid_ends.snapshot_end then '
            ~ visible_version_fingerprint('versions', 'grid_ends.previous_snapshot_end', 'versions.version_hash') ~ ' end') }} as previous_end_versions_hash
        {%- endif %}
    from hashed_versions as versions
    left join grid_ends on grid_ends.client_id = versions.client_id
    group by versions.customer_id
),

current_inputs as (
    select
        customers.customer_id,
        customers.client_id,
        {{ row_fingerprint(['customers.client_id', 'customers.country', 'customers.acquisition_channel',
                            'customers.birth_year', 'customers.signed_up_at', 'customers.first_loaded_at']) }} as customer_hash,
        coalesce(version_fingerprints.n_versions, 0) as n_versions,
        version_fingerprints.versions_hash,
        version_fingerprints.visible_versions_hash,
        {%- if previous_run %}
        version_fingerprints.previous_end_versions_hash,
        {%- endif %}
        timelines.snapshot_end,
        timelines.watermark_at,
        case when timelines.n_snapshots > 0
            then {{ add_days('timelines.snapshot_end', '-7 * (timelines.n_snapshots - 1)') }}
        end as first_snapshot_at
    from customers
    left join version_fingerprints on version_fingerprints.customer_id = customers.customer_id
    left join timelines on timelines.client_id = customers.client_id
),

{%- if previous_run %}

previous_inputs as (
    select * from {{ this }}
),

compared as (
    -- a customer that went away stays as a row without inputs: should it come back, it is changed
    select
        coalesce(current_inputs.customer_id, previous_inputs.customer_id) as customer_id,
        current_inputs.client_id,
        current_inputs.customer_hash,
        coalesce(current_inputs.n_versions, 0) as n_versions,
        current_inputs.versions_hash,
        current_inputs.visible_versions_hash,
        current_inputs.snapshot_end,
        current_inputs.first_snapshot_at,
        current_inputs.watermark_at,
        previous_inputs.snapshot_end as previous_snapshot_end,
        previous_inputs.watermark_at as previous_watermark_at,
        previous_inputs.first_snapshot_at as previous_first_snapshot_at,
        case
            when previous_inputs.customer_id is null then 'new_customer'
            when current_inputs.customer_id is null then 'removed'
            when previous_inputs.customer_hash is distinct from current_inputs.customer_hash then 'attributes'
            when previous_inputs.n_versions is distinct from current_inputs.n_versions
                or previous_inputs.versions_hash is distinct from current_inputs.versions_hash then 'transactions'
            -- the grid moved otherwise than by new points at its end: back, or its start earlier
            when previous_inputs.snapshot_end is null
                or previous_inputs.first_snapshot_at is null
                or current_inputs.snapshot_end < previous_inputs.snapshot_end
                or current_inputs.first_snapshot_at < previous_inputs.first_snapshot_at then 'grid_moved'
        end as change_reason,
        -- its versions changed, but not what any snapshot up to the previous grid end can see (the
        -- grid did not move back): those snapshots, the previous build's rows, stay as they were
        -- (a day's new purchases, a late row or a correction arriving after that end)
        coalesce(
            previous_inputs.customer_hash = current_inputs.customer_hash
            and current_inputs.snapshot_end >= previous_inputs.snapshot_end
            and current_inputs.first_snapshot_at >= previous_inputs.first_snapshot_at
            and case when current_inputs.snapshot_end = previous_inputs.snapshot_end
                then current_inputs.visible_versions_hash
                else current_inputs.previous_end_versions_hash
            end is not distinct from previous_inputs.visible_versions_hash,
            false) as is_history_unchanged
    from current_inputs
    full outer join previous_inputs on previous_inputs.customer_id = current_inputs.customer_id
),

{%- else %}

compared as (
    select
        *,
        cast(null as {{ engine_type('timestamptz') }}) as previous_snapshot_end,
        cast(null as {{ engine_type('timestamptz') }}) as previous_first_snapshot_at,
        cast(null as {{ engine_type('timestamptz') }}) as previous_watermark_at,
        'full_build' as change_reason,
        false as is_history_unchanged
    from current_inputs
),

{%- endif %}

final as (
    select
        -- ids
        compared.customer_id,
        compared.client_id,
        -- numerics
        compared.customer_hash,
        compared.n_versions,
        compared.versions_hash,
        compared.visible_versions_hash,
        -- the snapshots this build computes: all of a changed customer's, else the new grid points
        -- (NULL: the customer has no snapshot, and no row in the mart)
        cast(case
            when customer_spans.customer_id is null then null
            when compared.change_reason is not null and not compared.is_history_unchanged then customer_spans.first_week
            else least(
                {{ floor_weeks_between('compared.previous_snapshot_end', 'compared.snapshot_end') }} - 1,
                customer_spans.first_week)
        end as bigint) as rebuild_week,
        customer_spans.first_week,
        -- strings
        -- why the customer is recomputed whole (NULL: it is not): full_build, new_customer,
        -- removed, attributes, transactions, grid_moved
        compared.change_reason,
        -- booleans
        compared.change_reason is not null as is_changed,
        -- every snapshot of the customer is computed by this build (else: rebuild_week's only)
        compared.change_reason is not null and not compared.is_history_unchanged as is_recomputed_whole,
        -- timestamps
        compared.snapshot_end,
        compared.first_snapshot_at,
        -- the client's watermark (churn_labels: which as-of times' label windows are observed)
        compared.watermark_at,
        compared.previous_snapshot_end,
        compared.previous_first_snapshot_at,
        compared.previous_watermark_at
    from compared
    left join customer_spans on customer_spans.customer_id = compared.customer_id
)

select * from final
