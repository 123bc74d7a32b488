{#-
  Raw records and strict field parsing, shared by every client's staging models.

  Raw files are read one physical line per row (the source's `external_location` is a line
  reader), so a line that does not parse is quarantined with its own reason instead of failing
  the file. `csv_records` / `jsonl_records` turn those lines into records:

    line_number       first physical line of the record (1 = the file's first line)
    physical_lines    how many physical lines the record spans (a quoted newline: > 1)
    raw_line          the record's text as it was read (staging hashes it for rejected records:
                      raw_line_sha256 finds the line again without storing it)
    record_problem    NULL for a well-formed record, else why the whole record is unusable

  Blank lines are not records (the pre-flight's physical count skips them too). How each client
  writes its values (date order, the format of each date column, time zone, decimal and
  thousands separators) is declared once, in vars.parsing.<client> (dbt_project.yml).
-#}

{#
  The physical lines of a raw file (`relation`: the source's line reader), raw_line and
  line_number (1 = the file's first line). On an incremental run of an audited staging model only
  the lines from the first record it re-parses on (staging_first_reparsed_line), read from the
  file's tail when the build cut one that holds them (parity.ingest.raw_tails: the file's first
  lines, then its lines from `first_line` on, numbered as in the whole file), else from the whole
  file. `keep_head`: the lines before the first record stay too (a CSV's header; blank lines are
  no records). Every record from there on is split as in the whole file: the first line is a
  record's, so every quoted field opened before it is closed.
#}
{% macro raw_lines(relation, keep_head=false) %}
{%- set first = staging_first_reparsed_line() -%}
{%- set tail = raw_tail(relation, first) -%}
{%- if tail is not none %}
select raw_line, line_number from (
    select
        raw_line,
        case when line_index <= {{ tail.head_lines }} then line_index
             else line_index + {{ tail.first_line - tail.head_lines - 1 }} end as line_number
    from (select raw_line, {{ file_line_number() }} as line_index from {{ tail.relation }}) as tail_lines
) as numbered
where line_number >= {{ first }}{% if keep_head %} or line_number <= {{ tail.head_lines }}{% endif %}
{%- else %}
select raw_line, line_number from (
    select raw_line, {{ file_line_number() }} as line_number from {{ relation }}
) as numbered
{%- if first is not none and not keep_head %}
where line_number >= {{ first }}
{%- endif %}
{%- endif %}
{%- endmacro %}

{# An e-mail address anywhere in a text. #}
{% macro email_pattern() %}[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}{% endmacro %}

{# The declared parsing options of a client (vars.parsing.<client>) plus, once dbt executes, the
   raw file of the table (`file`, from the source's meta). #}
{% macro parse_options(source_name, table_name) %}
    {%- set options = {} -%}
    {%- do options.update(var('parsing', {}).get(source_name, {})) -%}
    {%- set node = (graph.get('sources') or {}).get('source.parity.' ~ source_name ~ '.' ~ table_name) if execute else none -%}
    {%- do options.update({'file': node.meta.get('file', '') if node else ''}) -%}
    {{ return(options) }}
{% endmacro %}

{# Each column name -> the engine's quoted identifier for it (adapter.quote: "x" on DuckDB, `x` on
   Spark). A name with blanks or capitals is only ever written this way: on Spark, which runs with
   ANSI off, a double-quoted name is a string literal, silently (tests/test_sql_portability.py). #}
{% macro quoted_columns(columns) %}
    {%- set quoted = {} -%}
    {%- for column in columns -%}{%- do quoted.update({column: adapter.quote(column)}) -%}{%- endfor -%}
    {{ return(quoted) }}
{% endmacro %}

{# A literal delimiter as a regex character. #}
{% macro regex_escape(text) -%}
{%- for ch in text -%}{{ '\\' ~ ch if ch in '|.^$*+?()[]{}\\/-' else ch }}{%- endfor -%}
{%- endmacro %}

{#
  Records of a delimited text file read line by line, with one column per declared column,
  taken by name from the header (so a reordered header still maps). A quote at a field boundary
  opens or closes a quoted field: a line leaving one open continues on the next line that closes
  it (a quoted newline), as Python's csv module counts records; a quote never closed runs to the
  end of the file, as one record (`unclosed_quote`).
#}
{% macro _csv_split(expr, delimiter) -%}
{%- set d = regex_escape(delimiter) -%}
{%- set field = '"(?:[^"]|"")*"|[^"' ~ d ~ ']*' -%}
case
    when length({{ expr }}) > {{ var('max_record_chars') }} then null
    when {{ expr }} not like '%"%' then {{ split_text(expr, delimiter) }}
    when {{ matches(expr, '(?:' ~ field ~ ')(?:' ~ d ~ '(?:' ~ field ~ '))*') }}
        then {{ unquote_csv_fields(all_matches(expr ~ " || '" ~ delimiter ~ "'", '(' ~ field ~ ')' ~ d)) }}
end
{%- endmacro %}

{% macro csv_records(relation, delimiter, columns, encoding='utf-8') %}
{%- set d = regex_escape(delimiter) -%}
{%- set others = [',', ';', '|', '\t'] | reject('equalto', delimiter) | list -%}
(
    with lines as (
        {{ raw_lines(relation, keep_head=true) }}
    ),

    nonblank as (
        select raw_line, line_number from lines where raw_line is not null and raw_line <> ''
    ),

    -- lines with an odd number of quotes at field boundaries leave a quoted field open; they
    -- pair up (opening, closing) in file order
    open_lines as (
        select line_number, row_number() over (order by line_number nulls last) as open_rank
        from nonblank
        where raw_line like '%"%'
          and {{ list_size(all_matches('raw_line', '((?:^|' ~ d ~ ')"|"(?:' ~ d ~ '|$))')) }} % 2 = 1
    ),

    spans as (
        select opening.line_number as first_line, closing.line_number as last_line
        from open_lines as opening
        left join open_lines as closing on closing.open_rank = opening.open_rank + 1
        where opening.open_rank % 2 = 1
    ),

    -- the lines of each closed span (few), and where an unclosed quote starts (at most one)
    covered as (
        select first_line, {{ explode_range('first_line', 'last_line + 1') }} as line_number
        from spans where last_line is not null
    ),

    unclosed as (
        select min(first_line) as first_line from spans where last_line is null
    ),

    assigned as (
        select
            nonblank.raw_line,
            nonblank.line_number,
            coalesce(covered.first_line, case when nonblank.line_number >= unclosed.first_line
                then unclosed.first_line end) as span_start,
            nonblank.line_number >= coalesce(unclosed.first_line, cast(9223372036854775807 as bigint)) as is_unclosed
        from nonblank
        left join covered on covered.line_number = nonblank.line_number
        cross join unclosed
    ),

    records as (
        select line_number, raw_line, cast(1 as bigint) as physical_lines, false as is_unclosed
        from assigned
        where span_start is null
        union all
        select
            span_start as line_number,
            {{ ordered_text_agg('raw_line', 'chr(10)', 'line_number') }} as raw_line,
            cast(count(*) as bigint) as physical_lines,
            bool_or(is_unclosed) as is_unclosed
        from assigned
        where span_start is not null
        group by span_start
    ),

    header as (
        select
            line_number as header_line,
            {{ list_size('fields') }} as header_field_count,
            {%- for column in columns %}
            {{ list_index_of(trim_list('fields'), "'" ~ column ~ "'") }} as position_{{ loop.index }}{{ ',' if not loop.last }}
            {%- endfor %}
        from (
            select line_number, {{ _csv_split('raw_line', delimiter) }} as fields
            from nonblank
            where line_number = (select min(line_number) from nonblank)
        ) as first_line
    ),

    split as (
        select records.*, {{ _csv_split('records.raw_line', delimiter) }} as fields
        from records
        -- the header is the first non-blank line (a scalar: no join on an inequality)
        where records.line_number > (select min(line_number) from nonblank)
    ),

    final as (
        select
            split.line_number,
            split.physical_lines,
            split.raw_line,
            case
                when length(split.raw_line) > {{ var('max_record_chars') }} then 'record_too_long'
                when split.is_unclosed then 'unclosed_quote'
                when {{ has_control_character('split.raw_line') }} then 'control_character'
                {%- if encoding | lower in ('latin-1', 'latin1', 'iso-8859-1') %}
                -- UTF-8 bytes read as Latin-1 show up as Ã or Â followed by a C1/Latin-1 character
                when {{ contains_match('split.raw_line', '[\\x{c3}\\x{c2}][\\x{80}-\\x{bf}]') }} then 'encoding_mismatch'
                {%- endif %}
                when left({{ trim_text('split.raw_line', 'leading') }}, 1) = '{' and coalesce({{ list_size('split.fields') }}, 0) <> header.header_field_count
                    then 'format_mismatch'
                when split.fields is null and split.physical_lines > 1 then 'quoted_newline_malformed'
                when split.fields is null then 'malformed_quoting'
                when {{ list_size('split.fields') }} <> header.header_field_count then
                    case
                        when split.physical_lines > 1 then 'quoted_newline_malformed'
                        -- none of the declared delimiter, a header's worth of another one
                        {%- for other in others %}
                        when {{ list_size('split.fields') }} = 1
                            and {{ list_size(split_text('split.raw_line', other)) }} >= header.header_field_count then 'delimiter_mismatch'
                        {%- endfor %}
                        else 'field_count_mismatch'
                    end
            end as record_problem,
            {%- for column in columns %}
            {{ list_element('split.fields', 'header.position_' ~ loop.index) }} as {{ adapter.quote(column) }}{{ ',' if not loop.last }}
            {%- endfor %}
        from split
        cross join header
    )

    select * from final
)
{% endmacro %}

{#
  Records of a JSON-lines file read line by line, each JSON text parsed a few times rather than
  once per field: `fields` are extracted together into `field_values` (text, in order; read one
  with list_element) and typed together for the checks. Every field must hold a single value (not
  an array or object) when present; a control character escaped in a JSON string (\u0000 ..
  \u001f, \u007f) is refused like a raw one.
#}
{% macro jsonl_records(relation, fields) %}
(
    with lines as (
        {{ raw_lines(relation) }}
    ),

    typed as (
        select
            line_number,
            raw_line,
            {{ is_valid_json('raw_line') }} as is_json,
            {{ json_value_type('raw_line') }} as root_type,
            {{ json_value_types('raw_line', fields) }} as field_types
        from lines
        where raw_line is not null and raw_line <> ''
    ),

    final as (
        select
            line_number,
            cast(1 as bigint) as physical_lines,
            raw_line,
            case
                when length(raw_line) > {{ var('max_record_chars') }} then 'record_too_long'
                -- a raw control character makes the line invalid JSON: said as what it is
                when not is_json then
                    case
                        when {{ has_control_character('raw_line') }} then 'control_character'
                        when left({{ trim_text('raw_line', 'leading') }}, 1) = '{' then 'malformed_record'
                        else 'format_mismatch'
                    end
                when root_type <> 'OBJECT' then 'format_mismatch'
                when {{ has_escaped_control_character('raw_line') }} then 'control_character'
                -- a repeated key makes more keys than declared fields present (cheap to count; a
                -- CASE, not AND, so the distinct keys are only computed then)
                when case when {{ list_size(json_object_key_list('raw_line')) }} > {{ list_count_present('field_types') }}
                    then {{ list_has_duplicates(json_object_key_list('raw_line')) }} else false end
                    then 'duplicate_json_key'
                when {{ list_has('field_types', "'ARRAY'") }} or {{ list_has('field_types', "'OBJECT'") }} then 'non_scalar_field'
            end as record_problem,
            field_types,
            case when is_json then {{ json_texts('raw_line', fields) }} end as field_values
        from typed
    )

    select * from final
)
{% endmacro %}

{#
  Strict timestamps. `spec` is a dict: {format: strftime format, order: DMY|MDY|YMD, timezone: tz}
  for naive local times, or {format: iso8601} for ISO-8601 with a mandatory UTC offset.
  strict_timestamp() is the UTC instant (NULL unless the text is valid as declared);
  timestamp_problem() is NULL when valid, else the reason code (`reason` for a text that does not
  have the declared shape at all).
#}
{% macro _format_shape(fmt, year_digits=4) -%}
{%- set parts = [] -%}
{%- set ns = namespace(escape=false) -%}
{%- for ch in fmt -%}
    {%- if ns.escape -%}
        {%- do parts.append('[0-9]{' ~ year_digits ~ '}' if ch == 'Y' else '[0-9]{2}') -%}
        {%- set ns.escape = false -%}
    {%- elif ch == '%' -%}{%- set ns.escape = true -%}
    {%- else -%}{%- do parts.append(regex_escape(ch)) -%}
    {%- endif -%}
{%- endfor -%}
{{ parts | join('') }}
{%- endmacro %}

{% macro _iso_shape(with_offset=true) -%}
[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?{{ '(Z|[+-][0-9]{2}:[0-9]{2})' if with_offset }}
{%- endmacro %}

{# Real UTC offsets run from -12:00 to +14:00; minutes below 60. #}
{% macro _iso_offset_in_range() -%}
.*(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)
{%- endmacro %}

{% macro strict_timestamp(expr, spec) -%}
{%- if spec.get('format') == 'iso8601' -%}
case when {{ matches(expr, _iso_shape()) }} and {{ matches(expr, _iso_offset_in_range()) }}
     then {{ parse_iso_timestamp(expr) }} end
{%- else -%}
case when {{ matches(expr, _format_shape(spec.get('format', ''))) }}
     then {{ local_to_utc(parse_timestamp(expr, spec.get('format', '')), spec.get('timezone', 'UTC')) }} end
{%- endif -%}
{%- endmacro %}

{% macro timestamp_problem(expr, spec, reason) -%}
{%- set fmt = spec.get('format', '') -%}
{#- the value is what nearly every row has: only its absence is explained (the same expression as
    strict_timestamp, computed once by the engine) -#}
{%- if fmt == 'iso8601' -%}
case
    when {{ strict_timestamp(expr, spec) }} is not null then null
    when {{ expr }} is null then '{{ reason }}'
    when {{ matches(expr, _iso_shape()) }} then
        case
            when not {{ matches(expr, _iso_offset_in_range()) }} then 'offset_out_of_range'
            when {{ parse_iso_timestamp(expr) }} is null then '{{ reason }}'
        end
    when {{ matches(expr, _iso_shape(false)) }} then 'missing_offset'
    else '{{ reason }}'
end
{%- else -%}
{%- set order = spec.get('order', 'YMD') -%}
{%- set swapped = fmt.replace('%d', '%_').replace('%m', '%d').replace('%_', '%m') -%}
case
    when {{ strict_timestamp(expr, spec) }} is not null then null
    when {{ expr }} is null then '{{ reason }}'
    when {{ matches(expr, _format_shape(fmt)) }} then
        case
            when {{ parse_timestamp(expr, fmt) }} is not null then null
            {%- if order in ('DMY', 'MDY') %}
            -- valid only with day and month swapped: written in the other order
            when {{ parse_timestamp(expr, swapped) }} is not null then 'date_order_mismatch'
            {%- endif %}
            else '{{ reason }}'
        end
    -- a two-digit year is refused, not guessed (10/11/26 is not the year 0026, nor surely 2026)
    when {{ matches(expr, _format_shape(fmt, 2)) }} then 'ambiguous_date'
    else '{{ reason }}'
end
{%- endif -%}
{%- endmacro %}

{#
  Strict amounts with the client's declared separators (vars.parsing.<client>.decimal_separator,
  thousands_separator), through parse_amount / amount_format_problem (macros/shapes.sql): a
  number not written as declared is `ambiguous_amount` (1.234 in a comma-decimal client without
  thousands grouping is refused, never read as 1.234), NaN / Infinity `non_finite_amount`.
#}
{% macro strict_decimal(expr, options) -%}
{{ parse_amount(expr, options.get('decimal_separator', '.'), options.get('thousands_separator')) }}
{%- endmacro %}

{% macro decimal_problem(expr, options) -%}
case
    when {{ strict_decimal(expr, options) }} is not null then null
    when {{ matches('lower(' ~ trim_text(expr) ~ ')', '[+-]?(nan|inf|infinity)') }} then 'non_finite_amount'
    when {{ matches(trim_text(expr), '[+-]?[0-9][0-9.,]*[eE][+-]?[0-9]+') }} then 'ambiguous_amount'
    else {{ amount_format_problem(expr, options.get('decimal_separator', '.'), options.get('thousands_separator')) }}
end
{%- endmacro %}

{#
  Redacted text for the quarantine: e-mail addresses, phone-like numbers and name-like words
  (two or more capitalised words) masked, JSON fields declared as PII emptied. What is left is
  enough to recognise the record; raw_line_sha256 finds the exact line in the file.
#}
{% macro redact_pii(expr, pii_keys=['email', 'name', 'e-mail', 'full_name']) -%}
{%- set ns = namespace(sql=expr) -%}
{%- for key in pii_keys -%}
    {%- set ns.sql = replace_all_matches(ns.sql, '"' ~ key ~ '"\\s*:\\s*"(?:[^"\\\\]|\\\\.)*"', '"' ~ key ~ '":"<redacted>"') -%}
{%- endfor -%}
{%- set ns.sql = replace_all_matches(ns.sql, email_pattern(), '<email>') -%}
{%- set ns.sql = replace_all_matches(ns.sql, '\\+[0-9][0-9 ().-]{6,}[0-9]', '<phone>') -%}
{%- set ns.sql = replace_all_matches(ns.sql, '\\(?\\b[0-9]{3}\\)?[ .-][0-9]{3}[ .-][0-9]{4}\\b', '<phone>') -%}
{%- set ns.sql = replace_all_matches(ns.sql, '\\b0[0-9]{3,4}[ /-]?[0-9]{6,8}\\b', '<phone>') -%}
{%- set ns.sql = replace_all_matches(ns.sql, '\\p{Lu}[\\p{Ll}\\x{27}-]+(?:[ ]+(?:\\p{Ll}{1,3}[ ]+)?\\p{Lu}[\\p{Ll}\\x{27}-]+)+', '<name>') -%}
{{ ns.sql }}
{%- endmacro %}

{# The timestamp spec of one raw column: its declared format with the source's order and zone. #}
{% macro timestamp_spec(options, column) -%}
{%- set formats = options.get('formats', {}) -%}
{%- if execute and column not in formats -%}
    {{ exceptions.raise_compiler_error("meta.parsing.formats declares no format for column '" ~ column ~ "'") }}
{%- endif -%}
{{ return({'format': formats.get(column, '%Y'), 'order': options.get('date_order', 'YMD'),
           'timezone': options.get('timezone', 'UTC')}) }}
{%- endmacro %}

{# An id kept for the quarantine only when it looks like one (no blank, no '@', at most 64
   characters); anything else (a name, an e-mail pasted into an id column) becomes a hash. #}
{% macro redact_id(expr) -%}
case when {{ matches(expr, '[^\\s@]{1,64}') }} then {{ expr }}
     else '<redacted:' || left({{ sha256_hex(expr) }}, 12) || '>' end
{%- endmacro %}
