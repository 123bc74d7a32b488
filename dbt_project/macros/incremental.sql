{#-
  Incremental staging (`python -m parity build --incremental`, parity/ingest/incremental.py).

  Raw files only grow (a new day's drop is appended); the Python side proves that before it asks
  dbt for an incremental run (every raw file's old bytes unchanged, same project, same erasure
  list) and sets PARITY_INCREMENTAL=1; otherwise it builds everything. An incremental run starts
  from a copy of the published warehouse and re-parses, per audited staging model (one row per
  raw record, keyed by line_number):
    - every record from the previous run's last record on (the last record is re-read: an
      unclosed quote at the old end may close in the appended lines), and
    - every record the previous run refused as arriving after the build (the build time moved on:
      `arrival_after_build_time`, or a `future_date` given to a declared arrival, see below)
  and replaces those rows (delete+insert on line_number). Every other row is exactly what a full
  run computes, because staging judges each record on its own text only. DuckDB only: the Spark
  profile builds staging as tables, always in full.
-#}

{# The config of an audited staging model (called by stage_customers / stage_transactions): a
   client's drop (models/staging/), not the event log (a table; the fresh-event path runs its SQL).
   `event`: the record's event time column (see staging_reparsed_lines). #}
{% macro staging_materialization(event) %}
    {%- if target.type == 'duckdb' and model.original_file_path.startswith('models/staging/') -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert', 'unique_key': 'line_number',
                   'pre_hook': ["{{ record_staging_increment('old', '" ~ event ~ "') }}"],
                   'post_hook': ["{{ record_staging_increment('new', '" ~ event ~ "') }}"]}) }}
    {%- endif -%}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{# Whether this run adds to a copy of the published warehouse (see above). #}
{% macro incremental_run() %}
    {#- env first: dbt's unit tests have no relation to ask is_incremental() about -#}
    {{ return(env_var('PARITY_INCREMENTAL', '') == '1' and model.resource_type != 'unit_test' and is_incremental()) }}
{% endmacro %}

{# The WHERE clause choosing the records an incremental run re-parses (nothing on a full run). The
   line numbers are looked up first and written as constants: a subquery in the filter keeps
   DuckDB from pushing it below the parsing, which then runs on every record again. #}
{% macro incremental_staging_filter(parsed, event) %}
{%- if execute and incremental_run() %}
    {%- set lines = staging_reparsed_lines(event) %}
where {{ parsed }}.line_number >= {{ lines.cutoff }}
    {%- if lines.again %}
    or {{ parsed }}.line_number in ({% for line in lines.again %}{{ line | int }}{{ ', ' if not loop.last }}{% endfor %})
    {%- endif %}
{%- endif %}
{% endmacro %}

{# The records an incremental run of an audited staging model re-parses: every line from `cutoff`
   on, and the lines in `again` (looked up in the model's previous rows, before the run; `event`:
   the record's event time column). #}
{% macro staging_reparsed_lines(event) %}
    {%- set cutoff = run_query("select coalesce(max(line_number), 0) from " ~ this).columns[0].values()[0] | int -%}
    {#- only these two verdicts depend on the build time, and only one of a record that has arrived
        by this build's time can change (the time only moves on: the --vars, build_time too, are the
        base's): `arrival_after_build_time` (arrival after the build time plus tolerance), and a
        `future_date` not earned by the event itself (after its arrival), which is a declared arrival
        after the previous build's start (arrival_after_build, macros/shapes.sql). A purchase dated
        2099 stays refused and is not re-read (dune's 2,983 at 10M were: its whole file every run) -#}
    {%- set again = run_query("select line_number from " ~ this ~ " where line_number < " ~ cutoff
        ~ " and ((quarantine_reason = 'arrival_after_build_time' and loaded_at <= "
        ~ add_hours(build_time(), var('build_time_tolerance_hours')) ~ ")"
        ~ " or (quarantine_reason = 'future_date' and loaded_at <= " ~ build_time()
        ~ " and coalesce(" ~ event ~ " <= " ~ add_hours('loaded_at', var('future_tolerance_hours'))
        ~ ", true))) order by line_number").columns[0].values() | list -%}
    {#- many records to judge again: re-parse from the first of them on (a long IN list costs more) -#}
    {%- if again | length > 1000 -%}{%- set cutoff = again[0] | int -%}{%- set again = [] -%}{%- endif %}
    {{ return({'cutoff': cutoff, 'again': again}) }}
{% endmacro %}

{# The event time column of an audited staging model (for staging_reparsed_lines). #}
{% macro staging_event_column() %}
    {{ return('signed_up_at' if this.identifier.endswith('__customers') else 'transacted_at') }}
{% endmacro %}

{# The first line an incremental run of an audited staging model re-parses (none on any other run):
   a record's first line, so the records from there on are split as in the whole file. #}
{% macro staging_first_reparsed_line() %}
    {%- if not (execute and incremental_run()) -%}{{ return(none) }}{%- endif -%}
    {%- set lines = staging_reparsed_lines(staging_event_column()) -%}
    {{ return(([lines.cutoff | int] + (lines.again | map('int') | list)) | min) }}
{% endmacro %}

{# The tail of the raw file `relation` reads (parity.ingest.raw_tails, cut by the incremental
   build into the build folder) when it holds every line from `first` on: {relation: the source's
   reader over the tail, head_lines, first_line}; none otherwise (the whole file is read). #}
{% macro raw_tail(relation, first) %}
    {%- set index = env_var('PARITY_BUILD_DIR', '') ~ '/raw_tails.json' -%}
    {%- if first is none or env_var('PARITY_BUILD_DIR', '') == ''
           or run_query("select count(*) from glob('" ~ index ~ "')").columns[0].values()[0] == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set reader = relation | string -%}
    {%- set tails = run_query("select file, tail, head_lines, first_line from read_json('" ~ index ~ "', format = 'newline_delimited', "
        ~ "columns = {file: 'VARCHAR', tail: 'VARCHAR', head_lines: 'BIGINT', first_line: 'BIGINT'})") -%}
    {%- for row in tails.rows -%}
        {%- set literal = "'" ~ (row[0] | replace("'", "''")) ~ "'" -%}
        {%- if reader.count(literal) == 1 and (first >= row[3] or row[3] == row[2] + 1) -%}
            {{ return({'relation': reader | replace(literal, "'" ~ (row[1] | replace("'", "''")) ~ "'"),
                       'head_lines': row[2] | int, 'first_line': row[3] | int}) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{% endmacro %}

{#- ---- What an incremental run changed, for the models downstream of staging ------------------
  An audited staging model's incremental run records in increments.<model> the keys of the rows it
  replaces (side 'old', written before the run: the same lines the run re-parses) and of the rows
  it wrote for them (side 'new', after the run: those lines and every line past the old end).
  int_transactions_unioned and int_transactions_versioned recompute only the keys named there (or
  found changed by comparing rows, for a staging table rebuilt whole), and keep every other row;
  the incremental build creates the schema empty first and drops it after the run
  (parity.ingest.incremental.reset_increments), so no table of a previous build is ever read as
  this one's. -#}

{% macro increments_schema() %}{{ return('increments') }}{% endmacro %}

{# The key a staging model's rows are recomputed by downstream: the transaction id or the customer id. #}
{% macro staging_key_column() %}
    {{ return('customer_id' if this.identifier.endswith('__customers') else 'transaction_id') }}
{% endmacro %}

{# Pre-hook ('old') and post-hook ('new') of an audited staging model's incremental run. #}
{% macro record_staging_increment(side, event) %}
{%- if execute and incremental_run() %}
    {%- set table = increments_schema() ~ '.' ~ this.identifier %}
    {%- if side == 'old' %}
        {%- set lines = staging_reparsed_lines(event) %}
create or replace table {{ table }} as
select 'old' as side, line_number, client_id, {{ staging_key_column() }} as key_id
from {{ this }}
where line_number >= {{ lines.cutoff }}
    {%- if lines.again %} or line_number in ({{ lines.again | join(', ') }}){% endif %}
    {%- else %}
insert into {{ table }}
select 'new', line_number, client_id, {{ staging_key_column() }}
from {{ this }}
where line_number > (select coalesce(max(line_number), 0) from {{ table }} where side = 'old')
    or line_number in (select line_number from {{ table }} where side = 'old')
    {%- endif %}
{%- endif %}
{% endmacro %}

{# Whether the table `schema.name` exists (asked of the database, as below). #}
{% macro has_table(relation_name) %}
    {%- set parts = relation_name.split('.') -%}
    {%- set found = run_query("select count(*) from duckdb_tables() where database_name = current_database()"
        ~ " and schema_name = '" ~ parts[0] ~ "' and table_name = '" ~ parts[1] ~ "'") -%}
    {{ return(found.columns[0].values()[0] | int > 0) }}
{% endmacro %}

{# Whether `model_name` (a staging or keyed model) recorded its increment in this run. #}
{#- asked of the database, not dbt's relation cache: the increments tables are written by hooks,
    which the cache does not see -#}
{% macro has_increment(model_name) %}
    {%- set found = run_query("select count(*) from duckdb_tables() where database_name = current_database()"
        ~ " and schema_name = '" ~ increments_schema() ~ "' and table_name = '" ~ model_name ~ "'") -%}
    {{ return(found.columns[0].values()[0] | int > 0) }}
{% endmacro %}

{# The config of a model recomputed per key on an incremental run (DuckDB): its pre-hooks write the
   keys to recompute into increments.<model> and delete their rows; the model then appends the
   recomputed rows. Spark: a table, full builds only. #}
{% macro keyed_materialization(keys_macro) %}
    {%- if target.type == 'duckdb' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'append',
                   'pre_hook': ["{{ record_changed_keys('" ~ keys_macro ~ "') }}",
                                "{{ delete_changed_keys() }}"]}) }}
    {%- endif -%}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{# The same per customer (int_transactions_snapshot_intervals): its pre-hooks write the customers
   to recompute into increments.<model> and delete their rows. #}
{% macro customer_keyed_materialization() %}
    {%- if target.type == 'duckdb' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'append',
                   'pre_hook': ["{{ record_changed_customers() }}", "{{ delete_changed_customers() }}"]}) }}
    {%- endif -%}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{# The customers whose interval rows may differ from the previous run's: every customer
   int_customer_feature_changes recomputes whole (its attributes, versions or span changed, new,
   removed), and every customer of a client whose grid changed at all (the week coordinates count
   back from the grid's end; a new first snapshot moves first_week). #}
{% macro record_changed_customers() %}
{%- if execute and incremental_run() %}
    {%- do run_query('create schema if not exists ' ~ increments_schema()) %}
create or replace table {{ changed_keys_table() }} as
select customer_id from {{ ref('int_customer_feature_changes') }}
where change_reason is not null
    or snapshot_end is distinct from previous_snapshot_end
    or first_snapshot_at is distinct from previous_first_snapshot_at
{%- endif %}
{% endmacro %}

{% macro delete_changed_customers() %}
{%- if execute and incremental_run() %}
delete from {{ this }} using {{ changed_keys_table() }} as changed
where {{ this }}.customer_id = changed.customer_id
{%- elif execute and is_incremental() %}
delete from {{ this }}
{%- endif %}
{% endmacro %}

{% macro only_changed_customers(alias) %}
{%- if execute and incremental_run() -%}
{{ alias }}.customer_id in (select customer_id from {{ changed_keys_table() }})
{%- else -%}
true
{%- endif -%}
{% endmacro %}

{% macro changed_keys_table() %}{{ return(increments_schema() ~ '.' ~ this.identifier) }}{% endmacro %}

{% macro record_changed_keys(keys_macro) %}
{%- if execute and incremental_run() %}
create or replace table {{ changed_keys_table() }} as
select distinct client_id, transaction_id from (
    {%- if keys_macro == 'unioned' %}{{ unioned_changed_keys() }}{% else %}{{ versioned_changed_keys() }}{% endif %}
) as changed
where transaction_id is not null
{%- endif %}
{% endmacro %}

{# Deletes the rows the run recomputes. Run on an existing table outside an incremental build (an
   ad hoc `dbt build`), the model computes every row: all the old ones are deleted first. #}
{% macro delete_changed_keys() %}
{%- if execute and incremental_run() %}
delete from {{ this }} using {{ changed_keys_table() }} as changed
where {{ this }}.client_id = changed.client_id and {{ this }}.transaction_id = changed.transaction_id
{%- elif execute and is_incremental() %}
delete from {{ this }}
{%- endif %}
{% endmacro %}

{# The filter of a keyed model's rows on an incremental run, one client's (`client`): only the
   recorded keys (`alias`: the relation whose transaction_id is matched). An uncorrelated IN: a
   correlated EXISTS is planned by DuckDB as a much slower delim join. #}
{% macro only_changed_keys(alias, client) %}
{%- if execute and incremental_run() -%}
{{ alias }}.transaction_id in (select transaction_id from {{ changed_keys_table() }} where client_id = '{{ client }}')
{%- else -%}
true
{%- endif -%}
{% endmacro %}

{# The same for rows of any client: a semi join, written after `from <relation> as <alias>`. #}
{% macro changed_keys_join(alias) %}
{%- if execute and incremental_run() -%}
semi join {{ changed_keys_table() }} as changed
    on changed.client_id = {{ alias }}.client_id and changed.transaction_id = {{ alias }}.transaction_id
{%- endif -%}
{% endmacro %}

{# int_transactions_unioned: the (client, transaction id) keys whose accepted records may differ from
   the previous run's. A staging model that recorded its increment names them; a staging table
   rebuilt whole (dune's log) is compared with the previous run's rows of its client per key (row
   count and a sum of 64-bit row hashes over every column: ~10x cheaper than EXCEPT ALL on the raw
   text; the feature mart's fingerprints rest on the same hashes); every pushed event's key is
   taken (the log is small). #}
{% macro unioned_changed_keys() %}
{%- set columns = 'client_id, transaction_id, customer_id, source_customer_id, transaction_type, category, currency, amount_local, amount_usd, transacted_at, loaded_at, raw_record' %}
    {%- for client in var('clients') %}
        {%- set model_name = 'stg_' ~ client ~ '__transactions' %}
        {%- if has_increment(model_name) %}
    select client_id, key_id as transaction_id from {{ increments_schema() }}.{{ model_name }}
        {%- else %}
    select '{{ client }}' as client_id, transaction_id from (
        select transaction_id, count(*) as n_rows, sum(hash({{ columns }})) as rows_hash
        from (
            select {{ columns }} from {{ ref(model_name) }} where quarantine_reason is null
            union all
            select {{ columns }} from {{ ref('stg_events__transactions') }}
            where quarantine_reason is null and client_id = '{{ client }}'
        ) as staged
        group by transaction_id
    ) as now
    full outer join (
        select transaction_id, count(*) as n_rows, sum(hash({{ columns }})) as rows_hash
        from {{ this }} where client_id = '{{ client }}'
        group by transaction_id
    ) as before using (transaction_id)
    where now.n_rows is distinct from before.n_rows or now.rows_hash is distinct from before.rows_hash
        {%- endif %}
    union all
    {%- endfor %}
    select client_id, transaction_id from {{ ref('stg_events__transactions') }}
{% endmacro %}

{# Hooks of int_customers_deduplicated (a table) on an incremental run: before it is rebuilt
   ('old') its customers are set aside (increments.int_customers_deduplicated__before, dropped with
   the schema after the build); after ('new') increments.int_customers_deduplicated holds the
   customers who became known or unknown (a set difference of the customers, not of their
   transactions: int_transactions_versioned then reads only their keys). #}
{% macro record_known_customers(side) %}
{%- if execute and target.type == 'duckdb' and env_var('PARITY_INCREMENTAL', '') == '1' and load_relation(this) is not none %}
    {%- set before = increments_schema() ~ '.' ~ this.identifier ~ '__before' %}
    {%- if side == 'old' %}
create or replace table {{ before }} as select customer_id from {{ this }}
    {%- elif has_table(before) %}
create or replace table {{ changed_keys_table() }} as
(select customer_id from {{ before }} except select customer_id from {{ this }})
union all
(select customer_id from {{ this }} except select customer_id from {{ before }})
    {%- endif %}
{%- endif %}
{% endmacro %}

{# int_transactions_versioned: the keys int_transactions_unioned recomputed, and every key of a
   customer that became known (a customer record arrived: its orphans get versions) or unknown
   (its versions go). #}
{% macro versioned_changed_keys() %}
    {%- set unioned = ref('int_transactions_unioned') %}
    {%- if has_increment(unioned.identifier) %}
    select client_id, transaction_id from {{ increments_schema() }}.{{ unioned.identifier }}
    {%- else %}
    {#- unioned was rebuilt whole: every key -#}
    select client_id, transaction_id from {{ unioned }}
    union all
    select client_id, transaction_id from {{ this }}
    {%- endif %}
    union all
    {%- set customers = ref('int_customers_deduplicated') %}
    {%- if has_increment(customers.identifier) %}
    {#- the customers int_customers_deduplicated recorded (most days none: nothing is scanned) #}
    select client_id, transaction_id from {{ unioned }}
    where duplicate_rank = 1 and customer_id in (select customer_id from {{ increments_schema() }}.{{ customers.identifier }})
    union all
    select client_id, transaction_id from {{ this }}
    where customer_id in (select customer_id from {{ increments_schema() }}.{{ customers.identifier }})
    {%- else %}
    select client_id, transaction_id from {{ unioned }}
    where duplicate_rank = 1 and customer_id in (
        select customer_id from {{ customers }}
        except
        select customer_id from {{ this }})
    union all
    select client_id, transaction_id from {{ this }}
    where customer_id in (
        select customer_id from {{ this }}
        except
        select customer_id from {{ customers }})
    {%- endif %}
{% endmacro %}

{#- ---- The incremental feature mart (README "Incremental builds") ------------------------------
  int_customer_feature_changes compares a fingerprint of each customer's inputs with the previous
  build's and says which of its snapshots this build computes (rebuild_week); the feature mart
  then computes those rows and keeps the previous build's others. -#}

{# int_customer_feature_changes keeps the previous build's fingerprints (DuckDB: incremental,
   every row replaced each run; Spark: a table, full builds only). #}
{% macro feature_changes_materialization() %}
    {%- if target.type == 'duckdb' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert', 'unique_key': 'customer_id'}) }}
    {%- endif -%}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{# Whether this run of a mart adds to the previous build's rows (an incremental run of a copied
   DuckDB warehouse whose mart exists): the mart's own relation holds the previous rows. #}
{% macro incremental_mart_run() %}
    {%- if not execute or target.type != 'duckdb' or model.resource_type == 'unit_test'
           or env_var('PARITY_INCREMENTAL', '') != '1' -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(load_relation(this) is not none) }}
{% endmacro %}

{# A number that changes when any of the columns' values does (summed over rows: order-free).
   DECIMAL(38, 0) on both engines, so that the fingerprint columns have one type everywhere (the
   scale group compares every table's types across engines); the values are engine-specific
   (DuckDB's hash vs Spark's xxhash64) and only ever compared with the same engine's previous build. #}
{# Whether a label at as-of time `as_of` may differ between this run and the previous one because
   the client's watermark moved (`windows`: a relation with watermark_at and previous_watermark_at,
   none before): its window (as_of, as_of + horizon] is observed under one watermark and not the
   other. churn_labels (incremental). #}
{% macro churn_window_moved(as_of, windows) -%}
({{ windows }}.previous_watermark_at is null
 or ({{ days_between(as_of, windows ~ '.watermark_at') }} >= {{ var('churn_horizon_days') }})
    != ({{ days_between(as_of, windows ~ '.previous_watermark_at') }} >= {{ var('churn_horizon_days') }}))
{%- endmacro %}

{# A bigint that depends on the text alone (63 bits of the engine's 64-bit hash; engine-specific,
   like row_fingerprint: DuckDB's hash, Spark's xxhash64). #}
{% macro stable_key(expr) %}{{ return(adapter.dispatch('stable_key', 'parity')(expr)) }}{% endmacro %}
{% macro default__stable_key(expr) %}cast(hash({{ expr }}) >> 1 as bigint){% endmacro %}
{% macro spark__stable_key(expr) %}(xxhash64({{ expr }}) & 9223372036854775807){% endmacro %}

{% macro row_fingerprint(columns) %}{{ return(adapter.dispatch('row_fingerprint', 'parity')(columns)) }}{% endmacro %}
{% macro default__row_fingerprint(columns) %}cast(hash({{ columns | join(', ') }}) as decimal(38, 0)){% endmacro %}
{% macro spark__row_fingerprint(columns) %}cast(xxhash64({{ columns | join(', ') }}) as decimal(38, 0)){% endmacro %}

{#- ---- Data tests on an incremental run ------------------------------------------------------
  dbt's generic tests read the tested model through get_where_subquery (overridden here: a
  root-project macro takes precedence over dbt's own). On an incremental run, a test whose outcome
  on a row depends only on that row and on the other rows of its key (not_null, accepted values and
  ranges, expressions, relationships -- the parent is read whole --,
  uniqueness over columns that include the key) reads only the rows this run computed, by key:
    - int_transactions_unioned, int_transactions_versioned: the keys they recomputed;
    - int_transactions_snapshot_intervals: the customers it recomputed;
    - customer_features_weekly: the customers with rows computed by this run (rebuild_week >= 0);
    - the audited staging models (incremental by line_number): the lines this run wrote.
  Every other row is the previous build's, which passed the same tests (the project and the
  arguments are unchanged: parity.ingest.incremental), and did not change: a customer who is no
  longer known has its keys recomputed, its feature rows dropped. Aggregate tests (row counts,
  recency, equal row counts) and every other model read the whole table. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set restricted = incremental_test_restriction(relation) -%}
    {%- if where or restricted -%}
        {%- set filtered -%}
            (select tested.* from {{ relation }} as tested {{ restricted or '' }} where {{ where or 'true' }}) dbt_subquery
        {%- endset -%}
        {% do return(filtered) %}
    {%- endif -%}
    {% do return(relation) %}
{%- endmacro %}

{# The semi join restricting the `tested` rows of a test of `relation` (none: the whole table). #}
{% macro incremental_test_restriction(relation) %}
    {%- if not execute or target.type != 'duckdb' or env_var('PARITY_INCREMENTAL', '') != '1' -%}{{ return(none) }}{%- endif -%}
    {%- set test = model.get('test_metadata') or {} -%}
    {%- set name = test.get('name') -%}
    {%- set kwargs = test.get('kwargs') or {} -%}
    {%- set columns = kwargs.get('combination_of_columns') or [] -%}
    {#- (not not_null_proportion: on no rows at all it fails) -#}
    {%- set per_row = name in ['not_null', 'accepted_values', 'accepted_values_from_var', 'accepted_range',
                                'expression_is_true', 'relationships'] -%}
    {%- if relation.identifier in ('int_transactions_unioned', 'int_transactions_versioned') -%}
        {%- if not (per_row or (name == 'unique_combination_of_columns' and 'client_id' in columns
                                and 'transaction_id' in columns)) or not has_increment(relation.identifier) -%}
            {{ return(none) }}
        {%- endif -%}
        {{ return("semi join " ~ increments_schema() ~ "." ~ relation.identifier ~ " as changed"
                  ~ " on changed.client_id = tested.client_id and changed.transaction_id = tested.transaction_id") }}
    {%- elif relation.identifier == 'int_transactions_snapshot_intervals' -%}
        {#- the customers it recomputed (increments: record_changed_customers); every other
            customer's rows are the previous build's. Uniqueness over a version's key: a kept row
            and a recomputed one share a (client, transaction, version) only if that version moved
            to another customer -- then the customer it left lost a version, so its fingerprint changed
            (int_customer_feature_changes: change_reason) and it is recomputed too, its old rows gone -#}
        {%- if not (per_row or (name == 'unique_combination_of_columns' and 'client_id' in columns
                                and 'transaction_id' in columns)) or not has_increment(relation.identifier) -%}
            {{ return(none) }}
        {%- endif -%}
        {{ return("semi join " ~ increments_schema() ~ "." ~ relation.identifier ~ " as changed"
                  ~ " on changed.customer_id = tested.customer_id") }}
    {%- elif relation.identifier == 'customer_features_weekly' -%}
        {%- if not (per_row or (name == 'unique_combination_of_columns' and 'customer_id' in columns)) -%}
            {{ return(none) }}
        {%- endif -%}
        {#- by name, not ref(): a test may only ref what it depends on -#}
        {%- set changes = graph.nodes['model.parity.int_customer_feature_changes'] -%}
        {{ return("semi join (select customer_id from " ~ changes.database ~ "." ~ changes.schema ~ "."
                  ~ changes.alias ~ " where rebuild_week >= 0) as changed on changed.customer_id = tested.customer_id") }}
    {%- elif relation.identifier.startswith('stg_') and has_increment(relation.identifier) -%}
        {#- an audited staging model (delete+insert by line_number): the lines this run wrote. A
            relationship is left whole: its parent may have lost a key one of the kept rows names -#}
        {%- if not (name in ['not_null', 'accepted_values', 'accepted_values_from_var', 'accepted_range', 'expression_is_true']
                    or (name == 'unique_combination_of_columns' and 'line_number' in columns)) -%}
            {{ return(none) }}
        {%- endif -%}
        {{ return("semi join (select line_number from " ~ increments_schema() ~ "." ~ relation.identifier
                  ~ " where side = 'new') as changed on changed.line_number = tested.line_number") }}
    {%- endif -%}
    {{ return(none) }}
{% endmacro %}
