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
    {#- only these two verdicts depend on the build time, and only one of a record that has arrived
        by this build's time can change (the time only moves on: the --vars, build_time too, are the
        base's): `arrival_after_build_time` (arrival after the build time plus tolerance), and a
        `future_date` not earned by the event itself (after its arrival), which is a declared arrival
        after the previous build's start (arrival_after_build, macros/shapes.sql). A purchase dated
        2099 stays refused and is not re-read (dune's 2,983 at 10M were: its whole file every run). -#}
    {%- set cutoff = run_query("select coalesce(max(line_number), 0) from " ~ this).columns[0].values()[0] | int -%}
    {#- (a WHERE, not an aggregate's FILTER: DuckDB skips rows by the first condition, ~7x faster at 10M) -#}
    {%- set again = run_query("select line_number from " ~ this ~ " where quarantine_reason in ('arrival_after_build_time', 'future_date')"
        ~ " and line_number < " ~ cutoff
        ~ " and ((quarantine_reason = 'arrival_after_build_time' and loaded_at <= "
        ~ add_hours(build_time(), var('build_time_tolerance_hours')) ~ ")"
        ~ " or (quarantine_reason = 'future_date' and loaded_at <= " ~ build_time()
        ~ " and coalesce(" ~ event ~ " <= " ~ add_hours('loaded_at', var('future_tolerance_hours'))
        ~ ", true))) order by line_number").columns[0].values() | map('int') | list -%}
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

{# Whether each row of this staging model depends on its own line only, so that reading a tail
   of the raw file gives the re-parsed lines the rows the whole file gives them: not when the
   model's own SQL has a window function (it may count or compare over every line of the file) or
   derives ids with row_hash_id without `earlier` (the occurrence number counts the identical lines
   before it: a model onboarded with dbt files only, e.g. a drop without transaction ids, whose
   re-sent line got occurrence 1 from a tail instead of the whole file's 2). Such a model reads the
   whole file, as before the tails; dune's passes `earlier` (earlier_occurrences). #}
{% macro staging_rows_are_per_line() %}
    {%- set code = model.raw_code or '' -%}
    {%- if modules.re.search('\\bover\\s*\\(', code, modules.re.IGNORECASE) -%}{{ return(false) }}{%- endif -%}
    {{ return(code.count('row_hash_id(') <= code.count('earlier=')) }}
{% endmacro %}

{# The tail of the raw file `relation` reads (parity.ingest.raw_tails, cut by the incremental
   build into the build folder) when it holds every line from `first` on: {relation: the source's
   reader over the tail, head_lines, first_line}; none otherwise (the whole file is read). #}
{% macro raw_tail(relation, first) %}
    {%- set index = env_var('PARITY_BUILD_DIR', '') ~ '/raw_tails.json' -%}
    {%- if first is none or env_var('PARITY_BUILD_DIR', '') == '' or not staging_rows_are_per_line()
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

{#- ---- The quarantine on an incremental run -----------------------------------------------------
  quarantine_<client> (DuckDB: incremental, append) recomputes, on an incremental run, the rejected
  records of the staged lines this run re-parsed (increments.stg_<client>__<entity>, both sides:
  the lines replaced and the lines written), every row of a staging model without that record
  (rebuilt whole, e.g. dune's derived customers), the pushed events' rows (the log is small), and
  the orphans' rows of the keys int_transactions_versioned recomputed (increments.int_transactions_
  versioned: int_transactions_orphaned recomputes exactly those; every pushed event's key is among
  them) plus every orphan that came through the event log; its pre-hooks delete those rows first,
  and blank the samples of the kept rows whose retention period ended since (retained_sample,
  macros/retention.sql). Every kept row is what a full run computes: a rejected record's row
  depends on its own staged row only, an orphan's on its key's records (and its line, found again
  in staging: a re-parsed line's key is recomputed). Kept orphan rows are found by record_id, the
  key as the quarantine stores it (redact_id). Spark: a table, full builds only. -#}

{% macro quarantine_materialization(client) %}
    {%- if target.type == 'duckdb' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'append',
                   'pre_hook': ["{{ delete_recomputed_quarantine('" ~ client ~ "') }}",
                                "{{ expire_kept_quarantine_samples() }}"]}) }}
    {%- endif -%}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{# The staging model of a client's `source_table` ('customers' | 'transactions'). #}
{% macro quarantine_staging_model(source_table, client) %}
    {{ return('stg_' ~ client ~ '__' ~ source_table) }}
{% endmacro %}

{# Whether a staged row of `source_table` (in a select over that staging model) is recomputed by
   this run of the quarantine: every row, except on an incremental run only the re-parsed lines of
   a staging model that recorded them. #}
{% macro quarantine_lines_recomputed(source_table, client) %}
    {%- set model_name = quarantine_staging_model(source_table, client) -%}
    {%- if execute and incremental_run() and has_increment(model_name) -%}
line_number in (select line_number from {{ increments_schema() }}.{{ model_name }})
    {%- else -%}
true
    {%- endif -%}
{% endmacro %}

{# Whether an orphan of `client` (its key: `key_expr`; `redacted`: as the quarantine stores it) is
   recomputed by this run: on an incremental run, the keys int_transactions_versioned recomputed
   (an orphan that came through the event log is recomputed whatever its key: see above). #}
{% macro quarantine_orphans_recomputed(key_expr, client, redacted=false) %}
    {%- if execute and incremental_run() and has_increment('int_transactions_versioned') -%}
{{ key_expr }} in (select {{ redact_id('transaction_id') if redacted else 'transaction_id' }}
    from {{ increments_schema() }}.int_transactions_versioned where client_id = '{{ client }}')
    {%- else -%}
true
    {%- endif -%}
{% endmacro %}

{# Pre-hook: the rows this run recomputes (see above); on an existing table outside an incremental
   build (an ad hoc `dbt build`) every row. #}
{% macro delete_recomputed_quarantine(client) %}
{%- if execute and incremental_run() %}
delete from {{ this }}
where (quarantine_reason = 'orphan_customer' and {{ quarantine_orphans_recomputed('record_id', client, redacted=true) }})
    or source_table not in ('customers', 'transactions')
    {%- for source_table in ['customers', 'transactions'] %}
        {%- set model_name = quarantine_staging_model(source_table, client) %}
    or (source_table = '{{ source_table }}'
        {%- if has_increment(model_name) %}
        and line_number in (select line_number from {{ increments_schema() }}.{{ model_name }})
        {%- endif %})
    {%- endfor %}
{%- elif execute and is_incremental() %}
delete from {{ this }}
{%- endif %}
{% endmacro %}

{# Pre-hook: a kept row's sample blanked as a full run blanks it now (the cutoff only moves on). #}
{% macro expire_kept_quarantine_samples() %}
{%- if execute and incremental_run() and quarantine_sample_days() is not none %}
update {{ this }} set raw_record = {{ retained_sample('raw_record', 'loaded_at') }}
where raw_record is not null and ({{ retained_sample('raw_record', 'loaded_at') }}) is null
{%- else %}
select 1 as nothing_to_expire
{%- endif %}
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
{#- A keys table holds (client_id, transaction_id, is_new): is_new when the key had no row before
   this run (a new transaction: most of a day's keys), whose rows need no delete (each delete of a
   key reads every key of the 10M-row table; a handful of old keys is found through the zone maps).
   int_transactions_unioned reads the staged records of its keys once, in a pre-hook
   (increments.int_transactions_unioned__staged: the lines this run staged tell which keys are
   new), and records the rows it computed (__records: its own query again, on those few records).
   keys_macro 'versioned' writes the records of its keys (every rank) into
   increments.int_transactions_versioned__records -- those unioned computed, plus the scanned
   records of keys of customers who became known or unknown -- read instead of
   int_transactions_unioned by it and by the models keyed on its keys ('versioned_records':
   int_transactions_orphaned and _duplicates, which run after it). -#}
{% macro keyed_materialization(keys_macro) %}
    {%- if target.type == 'duckdb' -%}
        {%- if keys_macro == 'versioned_records' -%}
            {{ return({'materialized': 'incremental', 'incremental_strategy': 'append',
                       'pre_hook': ["{{ delete_changed_keys('int_transactions_versioned') }}"]}) }}
        {%- endif -%}
        {%- set unioned = keys_macro == 'unioned' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'append',
                   'pre_hook': ["{{ record_changed_keys('" ~ keys_macro ~ "') }}"]
                               + (["{{ record_staged_records() }}", "{{ record_kept_keys() }}"] if unioned
                                  else ["{{ record_changed_records() }}"])
                               + ["{{ delete_changed_keys() }}"],
                   'post_hook': ["{{ record_unioned_records() }}"] if unioned else []}) }}
    {%- endif -%}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{% macro changed_records_table() %}{{ return(increments_schema() ~ '.int_transactions_versioned__records') }}{% endmacro %}

{% macro unioned_records_table(suffix) %}{{ return(increments_schema() ~ '.int_transactions_unioned__' ~ suffix) }}{% endmacro %}

{# The staged records of int_transactions_unioned's keys (accepted, with the events'), and whether
   each is on a line this run did not write (is_kept_line: its key had it before). #}
{% macro record_staged_records() %}
{%- if execute and incremental_run() %}
create or replace table {{ unioned_records_table('staged') }} as
    {%- for client in var('clients') %}
        {%- set model_name = 'stg_' ~ client ~ '__transactions' %}
select {{ unioned_columns() }},
        {%- if has_increment(model_name) %}
    staged.line_number not in (select line_number from {{ increments_schema() }}.{{ model_name }} where side = 'new') as is_kept_line
        {%- else %}
    true as is_kept_line
        {%- endif %}
from {{ ref(model_name) }} as staged
where quarantine_reason is null and {{ only_changed_keys('staged', client) }}
union all
    {%- endfor %}
select {{ unioned_columns() }}, true as is_kept_line
from {{ ref('stg_events__transactions') }} as staged {{ changed_keys_join('staged') }}
where quarantine_reason is null
{%- endif %}
{% endmacro %}

{# A key with a record on a kept line had rows before. #}
{% macro record_kept_keys() %}
{%- if execute and incremental_run() %}
update {{ changed_keys_table() }} as changed set is_new = false
from (select distinct client_id, transaction_id from {{ unioned_records_table('staged') }} where is_kept_line) as kept
where changed.is_new and kept.client_id = changed.client_id and kept.transaction_id = changed.transaction_id
{%- endif %}
{% endmacro %}

{# The rows int_transactions_unioned computed (post-hook): its query again, on the staged records. #}
{% macro record_unioned_records() %}
{%- if execute and incremental_run() %}
create or replace table {{ unioned_records_table('records') }} as
{{ model.compiled_code }}
{%- endif %}
{% endmacro %}

{% macro unioned_columns() %}
    {{- return('client_id, transaction_id, customer_id, source_customer_id, transaction_type, category, currency, amount_local, amount_usd, transacted_at, loaded_at, raw_record') -}}
{% endmacro %}

{# Every record (all duplicate ranks) of the keys int_transactions_versioned recomputes: those
   int_transactions_unioned computed, and those of the other keys (customers who became known or
   unknown; most days none) read from its table. #}
{% macro record_changed_records() %}
{%- if execute and incremental_run() %}
    {%- set unioned = ref('int_transactions_unioned') %}
    {%- set others -%}
        (select client_id, transaction_id from {{ changed_keys_table() }}
         except select client_id, transaction_id from {{ increments_schema() }}.{{ unioned.identifier }})
    {%- endset %}
create or replace table {{ changed_records_table() }} as
select * from {{ unioned_records_table('records') }}
    {%- if run_query("select count(*) from " ~ others ~ " as others").columns[0].values()[0] | int > 0 %}
union all
select unioned.* from {{ unioned }} as unioned
semi join {{ others }} as changed
    on changed.client_id = unioned.client_id and changed.transaction_id = unioned.transaction_id
    {%- endif %}
{%- endif %}
{% endmacro %}

{# The records a model keyed on int_transactions_versioned's keys reads: on an incremental run those
   of the recomputed keys, else `relation` (int_transactions_unioned) whole. #}
{% macro changed_records(relation) %}
{%- if execute and incremental_run() -%}
{{ changed_records_table() }}
{%- else -%}
{{ relation }}
{%- endif -%}
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
select client_id, transaction_id, bool_and(is_new) as is_new from (
    {%- if keys_macro == 'unioned' %}{{ unioned_changed_keys() }}{% else %}{{ versioned_changed_keys() }}{% endif %}
) as changed
where transaction_id is not null
group by client_id, transaction_id
{%- endif %}
{% endmacro %}

{# Deletes the rows the run recomputes. Run on an existing table outside an incremental build (an
   ad hoc `dbt build`), the model computes every row: all the old ones are deleted first. #}
{% macro delete_changed_keys(keys_model=none) %}
{%- if execute and incremental_run() %}
    {%- set keys = increments_schema() ~ '.' ~ keys_model if keys_model else changed_keys_table() %}
    {%- if run_query("select count(*) from " ~ keys ~ " where not is_new").columns[0].values()[0] | int > 0 %}
delete from {{ this }} using (select client_id, transaction_id from {{ keys }} where not is_new) as changed
where {{ this }}.client_id = changed.client_id and {{ this }}.transaction_id = changed.transaction_id
    {%- endif %}
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
    {#- a key of a replaced line ('old') may have had rows; of a written line, only if another
        line has it too (record_kept_keys) #}
    select client_id, key_id as transaction_id, side = 'new' as is_new from {{ increments_schema() }}.{{ model_name }}
        {%- else %}
    select '{{ client }}' as client_id, transaction_id, before.n_rows is null as is_new from (
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
    select client_id, transaction_id, false as is_new from {{ ref('stg_events__transactions') }}
{% endmacro %}

{# int_customers_deduplicated and int_customers_duplicates (DuckDB): recomputed per customer on an
   incremental run. The customers whose records may have changed are written into
   increments.int_customers_deduplicated__keys (by int_customers_deduplicated; _duplicates runs
   after it and reads them): the keys an audited staging model recorded, every customer of a
   client staged whole (dune's are derived from its transactions) and of the previous rows of
   its client. Spark: tables, full builds only. #}
{% macro customer_records_materialization() %}
    {%- if target.type == 'duckdb' -%}
        {%- set deduplicated = model.name == 'int_customers_deduplicated' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'append',
                   'pre_hook': (["{{ record_changed_customer_records() }}", "{{ record_known_customers('old') }}"]
                                if deduplicated else []) + ["{{ delete_changed_customer_records() }}"],
                   'post_hook': ["{{ record_known_customers('new') }}"] if deduplicated else []}) }}
    {%- endif -%}
    {{ return({'materialized': 'table'}) }}
{% endmacro %}

{% macro customer_records_keys_table() %}
    {{- return(increments_schema() ~ '.int_customers_deduplicated__keys') -}}
{% endmacro %}

{% macro record_changed_customer_records() %}
{%- if execute and incremental_run() %}
create or replace table {{ customer_records_keys_table() }} as
select distinct customer_id from (
    {%- for client in var('clients') %}
        {%- set model_name = 'stg_' ~ client ~ '__customers' %}
        {%- if has_increment(model_name) %}
    select key_id as customer_id from {{ increments_schema() }}.{{ model_name }}
        {%- else %}
    select customer_id from {{ ref(model_name) }}
    union all
    select customer_id from {{ this }} where client_id = '{{ client }}'
        {%- endif %}
    union all
    {%- endfor %}
    select customer_id from {{ this }} where false
) as changed
where customer_id is not null
{%- endif %}
{% endmacro %}

{% macro delete_changed_customer_records() %}
{%- if execute and incremental_run() %}
delete from {{ this }} using {{ customer_records_keys_table() }} as changed
where {{ this }}.customer_id = changed.customer_id
{%- elif execute and is_incremental() %}
delete from {{ this }}
{%- endif %}
{% endmacro %}

{# The filter of the customer models' records on an incremental run: the recorded customers. #}
{% macro only_changed_customer_records(alias) %}
{%- if execute and incremental_run() -%}
{{ alias }}.customer_id in (select customer_id from {{ customer_records_keys_table() }})
{%- else -%}
true
{%- endif -%}
{% endmacro %}

{# Hooks of int_customers_deduplicated on an incremental run: before its recomputed customers'
   rows are deleted ('old') those it held are set aside (increments.int_customers_deduplicated__before);
   after ('new') increments.int_customers_deduplicated holds the customers who became known
   (is_known) or unknown (int_transactions_versioned then reads only their keys). #}
{% macro record_known_customers(side) %}
{%- if execute and incremental_run() %}
    {%- set before = increments_schema() ~ '.' ~ this.identifier ~ '__before' %}
    {%- set recorded -%}
        (select customer_id from {{ this }} semi join {{ customer_records_keys_table() }} as changed using (customer_id))
    {%- endset %}
    {%- if side == 'old' %}
create or replace table {{ before }} as select customer_id from {{ recorded }} as recorded
    {%- else %}
create or replace table {{ changed_keys_table() }} as
select customer_id, false as is_known
from (select customer_id from {{ before }} except select customer_id from {{ recorded }} as recorded) as gone
union all
select customer_id, true from (select customer_id from {{ recorded }} as recorded except select customer_id from {{ before }}) as arrived
    {%- endif %}
{%- endif %}
{% endmacro %}

{# int_transactions_versioned: the keys int_transactions_unioned recomputed, and every key of a
   customer that became known (a customer record arrived: its orphans get versions) or unknown
   (its versions go). #}
{% macro versioned_changed_keys() %}
    {%- set unioned = ref('int_transactions_unioned') %}
    {%- if has_increment(unioned.identifier) %}
    {#- a key new to unioned has no version yet #}
    select client_id, transaction_id, is_new from {{ increments_schema() }}.{{ unioned.identifier }}
    {%- else %}
    {#- unioned was rebuilt whole: every key -#}
    select client_id, transaction_id, false as is_new from {{ unioned }}
    union all
    select client_id, transaction_id, false from {{ this }}
    {%- endif %}
    union all
    {%- set customers = ref('int_customers_deduplicated') %}
    {%- if has_increment(customers.identifier) %}
    {#- the customers int_customers_deduplicated recorded (most days a few that became known, none
        that became unknown). One that became known had only orphans: its keys are found in the
        previous rows of int_transactions_orphaned (it runs after this model; ~1% of the rows),
        not in every record. One that became unknown had versions: this model's rows are read for
        it only on such a day. -#}
        {%- set counts = run_query("select count(*) filter (where is_known), count(*) filter (where not is_known) from "
                                   ~ increments_schema() ~ "." ~ customers.identifier).rows[0] %}
        {%- if counts[0] | int > 0 %}
            {%- set orphaned = graph.nodes['model.parity.int_transactions_orphaned'] %}
    select client_id, transaction_id, false as is_new from {{ orphaned.database }}.{{ orphaned.schema }}.{{ orphaned.alias }}
    where customer_id in (select customer_id from {{ increments_schema() }}.{{ customers.identifier }} where is_known)
    union all
        {%- endif %}
        {%- if counts[1] | int > 0 %}
    select client_id, transaction_id, false as is_new from {{ this }}
    where customer_id in (select customer_id from {{ increments_schema() }}.{{ customers.identifier }} where not is_known)
    union all
        {%- endif %}
    select null as client_id, null as transaction_id, false as is_new where false
    {%- else %}
    select client_id, transaction_id, false as is_new from {{ unioned }}
    where duplicate_rank = 1 and customer_id in (
        select customer_id from {{ customers }}
        except
        select customer_id from {{ this }})
    union all
    select client_id, transaction_id, false from {{ this }}
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
