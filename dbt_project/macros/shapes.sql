{#-
  Drops that are not a clean CSV or JSON file with ids and arrival times: lines without a
  header (whitespace-aligned or fixed-width), amounts with declared separators, rows without a
  transaction id, rows without an arrival time. Client staging models call these in their
  `parsed` CTE; the README's onboarding section has one recipe per shape.
-#}

{# The n-th (1-based) whitespace-separated field of a line, as text; NULL when the line has
   fewer fields. For whitespace-aligned files whose values never contain a blank. #}
{% macro whitespace_field(line, n) %}{{ return(adapter.dispatch('whitespace_field', 'parity')(line, n)) }}{% endmacro %}
{% macro default__whitespace_field(line, n) %}nullif(string_split_regex(trim({{ line }}, ' 	'), '[ 	]+')[{{ n }}], ''){% endmacro %}
{% macro spark__whitespace_field(line, n) %}nullif(try_element_at(split(trim({{ line }}), '[ \\t]+'), {{ n }}), ''){% endmacro %}

{# How many whitespace-separated fields a line has (0 for a blank line). #}
{% macro whitespace_field_count(line) %}{{ return(adapter.dispatch('whitespace_field_count', 'parity')(line)) }}{% endmacro %}
{% macro default__whitespace_field_count(line) %}(case when trim({{ line }}, ' 	') = '' then 0 else len(string_split_regex(trim({{ line }}, ' 	'), '[ 	]+')) end){% endmacro %}
{% macro spark__whitespace_field_count(line) %}(case when trim({{ line }}) = '' then 0 else size(split(trim({{ line }}), '[ \\t]+')) end){% endmacro %}

{# Fixed-width columns: `layout` is a list of (name, first character (1-based), width). Renders
   one trimmed text column per entry (NULL when blank), for a select list. #}
{% macro fixed_width_fields(line, layout) -%}
{%- for name, start, width in layout %}
        nullif({{ trim_text('substring(' ~ line ~ ', ' ~ start ~ ', ' ~ width ~ ')') }}, '') as {{ name }}{{ "," if not loop.last }}
{%- endfor %}
{%- endmacro %}

{# A fixed-width line is complete when it reaches its last column (a line cut mid-write is not). #}
{% macro fixed_width_is_complete(line, layout) -%}
coalesce(length({{ trim_text(line, 'trailing') }}) >= {{ layout[-1][1] }}, false)
{%- endmacro %}

{#
  The audited record reader of a fixed-width file (one record per line, no header): what
  csv_records / jsonl_records give (macros/raw_records.sql), so staging can say where every
  rejected line is (stage_transactions(audited=true): source_file, line_number, raw_line_sha256):
  line_number (1 = the file's first line, blank lines counted, as an editor counts them),
  physical_lines (1), raw_line, record_problem (NULL, or record_too_long, control_character,
  malformed_record for a line cut before its last column) and one trimmed text column per entry
  of `layout` (fixed_width_fields). Blank lines are not records (the pre-flight skips them too).
#}
{% macro fixed_width_records(relation, layout) %}
(
    with lines as (
        {{ raw_lines(relation) }}
    ),

    final as (
        select
            line_number,
            cast(1 as bigint) as physical_lines,
            raw_line,
            case
                when length(raw_line) > {{ var('max_record_chars') }} then 'record_too_long'
                when {{ has_control_character('raw_line') }} then 'control_character'
                when not {{ fixed_width_is_complete('raw_line', layout) }} then 'malformed_record'
            end as record_problem,
            {{ fixed_width_fields('raw_line', layout) }}
        from lines
        where raw_line is not null and raw_line <> ''
    )

    select * from final
)
{% endmacro %}

{# A regex character class-free literal for one separator character, safe inside a SQL string. #}
{% macro _separator_regex(char) -%}
{%- if char == "'" -%}''{%- elif char in ".^$*+?()[]{}|\\-" -%}\{{ char }}{%- else -%}{{ char }}{%- endif -%}
{%- endmacro %}

{% macro _check_separators(decimal_separator, thousands_separator) %}
{%- if decimal_separator | length != 1 or (thousands_separator is not none and thousands_separator | length != 1) or decimal_separator == thousands_separator -%}
{{ exceptions.raise_compiler_error("amount separators must be single, different characters; got decimal " ~ decimal_separator ~ " and thousands " ~ thousands_separator) }}
{%- endif -%}
{% endmacro %}

{# The regex an amount must fully match under the declared separators: an optional minus,
   digits grouped by threes with the thousands separator (or not grouped at all), an optional
   decimal part. #}
{% macro _declared_amount_regex(decimal_separator, thousands_separator) -%}
{%- set d = _separator_regex(decimal_separator) -%}
{%- if thousands_separator is none -%}
-?[0-9]+({{ d }}[0-9]+)?
{%- else -%}
-?([0-9]{1,3}({{ _separator_regex(thousands_separator) }}[0-9]{3})+|[0-9]+)({{ d }}[0-9]+)?
{%- endif -%}
{%- endmacro %}

{# An amount written with the declared decimal and thousands separators (per source, e.g. ','
   and '.' for "1.234,50"), as a double; NULL when the text does not follow that format. #}
{% macro parse_amount(expr, decimal_separator='.', thousands_separator=none) -%}
{{ _check_separators(decimal_separator, thousands_separator) }}
{%- set text = trim_text(expr) -%}
{%- set plain = text if thousands_separator is none else "replace(" ~ text ~ ", '" ~ (thousands_separator | replace("'", "''")) ~ "', '')" -%}
{%- set dotted = plain if decimal_separator == '.' else "replace(" ~ plain ~ ", '" ~ (decimal_separator | replace("'", "''")) ~ "', '.')" -%}
case when {{ matches(text, _declared_amount_regex(decimal_separator, thousands_separator)) }}
    then {{ try_double(dotted) }} end
{%- endmacro %}

{# 'ambiguous_amount' when the text is a number but not in the declared format (e.g. "1,234.50"
   where ',' is the declared decimal separator, or "12,5" where ',' groups thousands): which
   convention it follows cannot be known, so the row is quarantined rather than guessed. #}
{% macro amount_format_problem(expr, decimal_separator='.', thousands_separator=none) -%}
{{ _check_separators(decimal_separator, thousands_separator) }}
{%- set text = trim_text(expr) -%}
case
    when {{ matches(text, _declared_amount_regex(decimal_separator, thousands_separator)) }} then null
    when {{ matches(text, "[-+]?[0-9][0-9.,'' ]*") }} then 'ambiguous_amount'
end
{%- endmacro %}

{# A deterministic id for a row that has none: the first 16 hex digits of md5 over the row's
   trimmed fields, then '-' and the occurrence number among rows with the same fields in the same
   drop (`per`: a column naming the drop, e.g. the file name when several drop files are read
   together; default: the whole relation is one drop), counted in `order_by` order (e.g. the line
   number: a repeat appended later never renumbers an earlier line; default: any order). Identical lines in one drop are kept as
   separate transactions (occurrence 1, 2, ...); the same line sent again in another drop gets the
   same id, so it is the same transaction again, never a second one. The README's onboarding
   section says what this cannot tell apart. #}
{% macro row_hash_id(fields, per=none, order_by=none, earlier=none) -%}
{%- set hashed = line_fields_hash(fields) -%}
{{ hashed }} || '-' || cast(row_number() over (partition by {{ hashed }}{% if per is not none %}, {{ per }}{% endif %} order by {{ order_by if order_by is not none else hashed }} nulls last){% if earlier is not none %} + {{ earlier }}{% endif %} as {{ dbt.type_string() }})
{%- endmacro %}

{# The hash part of row_hash_id (16 hex digits). #}
{% macro line_fields_hash(fields) -%}
left(md5(concat_ws('|'{% for field in fields %}, coalesce({{ trim_text(field) }}, ''){% endfor %})), 16)
{%- endmacro %}

{# For row_hash_id(order_by='line_number', earlier=...) in an audited staging model, whose
   incremental run reads only the lines from the first it re-parses on (raw_lines): per row hash
   (`line_fields_hash`), how many of the model's kept rows (the lines before that one) have it, as
   `earlier_occurrences`; no rows on any other run. The previous rows hold those lines' ids,
   `<row hash>-<n>`, so an appended line's occurrence number is what the whole file gives it
   without reading the file again. #}
{% macro earlier_occurrences() %}
{%- set first = staging_first_reparsed_line() -%}
{%- if first is not none %}
select left(transaction_id, 16) as row_hash, count(*) as earlier_occurrences
from {{ this }}
where line_number < {{ first }} and transaction_id is not null
group by left(transaction_id, 16)
{%- else %}
select cast(null as {{ dbt.type_string() }}) as row_hash, cast(0 as {{ dbt.type_bigint() }}) as earlier_occurrences
where 1 = 0
{%- endif %}
{%- endmacro %}

{# The meta of a source table (its own merged over the source's); {} while dbt parses. #}
{% macro source_meta(source_name, table_name) %}
    {% if not execute %}{{ return({}) }}{% endif %}
    {% if 'sources' not in graph %}
        {{ exceptions.raise_compiler_error("source_meta('" ~ source_name ~ "', '" ~ table_name ~ "'): no source nodes here (a unit test?); override it: overrides: {macros: {source_meta: {...the table's meta...}}}") }}
    {% endif %}
    {% for node in graph.sources.values() %}
        {% if node.source_name == source_name and node.name == table_name %}
            {% set merged = {} %}
            {% do merged.update(node.source_meta or {}) %}
            {% do merged.update(node.meta or {}) %}
            {{ return(merged) }}
        {% endif %}
    {% endfor %}
    {{ exceptions.raise_compiler_error("no source " ~ source_name ~ "." ~ table_name) }}
{% endmacro %}

{# Arrival time (loaded_at) for a drop that carries none, from the rule its source declares in
   `meta.arrival`:
     {rule: drop_date, at: '2026-05-05T06:00:00Z'}  every row arrived with the drop, at `at`;
     {rule: delay, hours: 48}                        each row arrived `hours` after its event;
     {rule: monthly, day_of_month: 5, hour: 6}       each row arrived with the next monthly drop
                                                     (day `day_of_month`, `hour` UTC) after its event. #}
{% macro declared_arrival(event, source_name, table_name) -%}
{%- if not execute -%}{{ parse_iso_timestamp('null') }}{%- else -%}
{%- set arrival = source_meta(source_name, table_name).get('arrival') -%}
{%- set where = "source " ~ source_name ~ "." ~ table_name ~ " meta.arrival" -%}
{%- if arrival is none or arrival.get('rule') not in ('drop_date', 'delay', 'monthly') -%}
{{ exceptions.raise_compiler_error(where ~ ": declare how rows arrived, {rule: drop_date, at: <ISO time>} | {rule: delay, hours: <n>} | {rule: monthly, day_of_month: <1-28>, hour: <0-23>}; got " ~ arrival) }}
{%- elif arrival.rule == 'drop_date' -%}
{{ parse_iso_timestamp("'" ~ arrival.at ~ "'") }}
{%- elif arrival.rule == 'delay' -%}
{{ add_hours(event, arrival.hours | int) }}
{%- else -%}
{%- set day, hour = arrival.day_of_month | int, arrival.get('hour', 0) | int -%}
{%- if day < 1 or day > 28 or hour < 0 or hour > 23 -%}
{{ exceptions.raise_compiler_error(where ~ ": day_of_month must be 1-28 and hour 0-23; got " ~ arrival) }}
{%- endif -%}
{{ next_monthly_drop(event, day, hour) }}
{%- endif -%}
{%- endif -%}
{%- endmacro %}

{# The first instant strictly after `event` that falls on day `day` of a month at `hour`:00 UTC. #}
{% macro next_monthly_drop(event, day, hour) %}{{ return(adapter.dispatch('next_monthly_drop', 'parity')(event, day, hour)) }}{% endmacro %}
{% macro default__next_monthly_drop(event, day, hour) -%}
(date_trunc('month', {{ event }}) + to_hours({{ (day - 1) * 24 + hour }})
    + case when date_trunc('month', {{ event }}) + to_hours({{ (day - 1) * 24 + hour }}) > {{ event }}
           then interval 0 month else interval 1 month end)
{%- endmacro %}
{% macro spark__next_monthly_drop(event, day, hour) -%}
(case when date_trunc('MONTH', {{ event }}) + make_interval(0, 0, 0, {{ day - 1 }}, {{ hour }}) > {{ event }}
      then date_trunc('MONTH', {{ event }}) + make_interval(0, 0, 0, {{ day - 1 }}, {{ hour }})
      else date_trunc('MONTH', {{ event }}) + make_interval(0, 1, 0, {{ day - 1 }}, {{ hour }}) end)
{%- endmacro %}

{# 'future_date' for a row whose declared arrival lies after the build time (build_time(): var
   build_time, default the run's start, the one definition every build-time rule uses): no row can
   have arrived after we built (the check a real arrival time gets from `future_tolerance_hours`). #}
{% macro arrival_after_build(loaded_at) -%}
case when {{ loaded_at }} > {{ build_time() }} then 'future_date' end
{%- endmacro %}
