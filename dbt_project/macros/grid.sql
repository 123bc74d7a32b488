{#-
  The fixed weekly snapshot grid (README "Point in time"): snapshots are at
  vars.snapshot_anchor + 7k days (k any integer), the same instants for every client and every
  build. A client's grid ends at the last grid point at or before its watermark
  (int_client_timelines), so a new day's drop adds a snapshot only when it crosses a grid point,
  and an old snapshot's time never moves (what makes the feature mart incremental). Labels are
  emitted at every label_every_n_snapshots-th grid point counted from the anchor.
-#}

{# The anchor as a UTC timestamp literal, validated when the project compiles: an ISO-8601
   instant with its offset, at midnight UTC (snapshots are at midnights: tenure and window days
   count whole days). #}
{% macro snapshot_anchor() -%}
    {%- set text = var('snapshot_anchor') -%}
    {%- if text is not string -%}
        {{ exceptions.raise_compiler_error("vars.snapshot_anchor: a quoted ISO-8601 instant at midnight UTC is required, e.g. '2000-01-03T00:00:00+00:00'; got " ~ text) }}
    {%- endif -%}
    {%- set parsed = _parse_instant(text) -%}
    {%- if parsed is none or parsed.tzinfo is none -%}
        {{ exceptions.raise_compiler_error("vars.snapshot_anchor: '" ~ text ~ "' is not an ISO-8601 instant with a UTC offset (e.g. '2000-01-03T00:00:00+00:00')") }}
    {%- endif -%}
    {%- set utc = parsed.astimezone(modules.pytz.utc) -%}
    {%- if utc.hour or utc.minute or utc.second or utc.microsecond -%}
        {{ exceptions.raise_compiler_error("vars.snapshot_anchor: '" ~ text ~ "' is not at midnight UTC (snapshots are at midnights UTC)") }}
    {%- endif -%}
    {{- utc_timestamp_literal(utc.strftime('%Y-%m-%dT%H:%M:%S+00:00')) -}}
{%- endmacro %}

{# The last grid point at or before `expr` (a timestamp). #}
{% macro grid_point_at_or_before(expr) -%}
    {{ add_days(snapshot_anchor(), '7 * ' ~ floor_weeks_between(snapshot_anchor(), expr)) }}
{%- endmacro %}

{# The grid point's number: whole weeks from the anchor to `expr` (a grid point), negative before it. #}
{% macro grid_week(expr) -%}
    {{ floor_weeks_between(snapshot_anchor(), expr) }}
{%- endmacro %}
