{#-
  Engine-specific SQL lives here, behind adapter.dispatch, so models stay portable.
  Each macro has a DuckDB implementation (the embedded default) and a Spark one
  (the scale-out profile); add `<engine>__<macro>` to support another engine.
-#}

{# Parse a string with a strftime format; NULL (never an error) when it does not parse. #}
{% macro parse_timestamp(expr, fmt) %}{{ return(adapter.dispatch('parse_timestamp', 'parity')(expr, fmt)) }}{% endmacro %}
{% macro default__parse_timestamp(expr, fmt) %}try_strptime({{ expr }}, '{{ fmt }}'){% endmacro %}
{% macro spark__parse_timestamp(expr, fmt) %}to_timestamp({{ expr }}, '{{ fmt | replace('%d','dd') | replace('%m','MM') | replace('%Y','yyyy') | replace('%H','HH') | replace('%M','mm') | replace('%S','ss') }}'){% endmacro %}

{# Interpret a naive local timestamp in time zone `tz` and return it as a UTC instant.
   The DST rule, one for every engine (README "Scale-out profile"): a time in the hour repeated
   when clocks go back is read in standard time, the later of its two instants (Berlin
   2026-10-25 02:30 = 01:30 UTC); a time in the hour skipped when clocks go forward is read with
   the offset before the change (2026-03-29 02:30 = 01:30 UTC). DuckDB's timezone() does exactly
   this; Spark's to_utc_timestamp takes the earlier instant of a repeated time, so its version
   moves to the later one when that reads back as the same local time (a one-hour fold, as in
   every zone but Lord Howe's). Tested at 02:30 on both engines (tests/test_dst_rule.py). #}
{% macro local_to_utc(expr, tz) %}{{ return(adapter.dispatch('local_to_utc', 'parity')(expr, tz)) }}{% endmacro %}
{% macro default__local_to_utc(expr, tz) %}timezone('{{ tz }}', {{ expr }}){% endmacro %}
{% macro spark__local_to_utc(expr, tz) -%}
{%- set earlier = "to_utc_timestamp(" ~ expr ~ ", '" ~ tz ~ "')" -%}
(case when from_utc_timestamp({{ earlier }} + interval 1 hour, '{{ tz }}') = {{ expr }}
      then {{ earlier }} + interval 1 hour else {{ earlier }} end)
{%- endmacro %}

{# Parse an ISO-8601 timestamp with offset (Z, +00:00, -05:00) into a UTC instant; NULL if invalid. #}
{% macro parse_iso_timestamp(expr) %}{{ return(adapter.dispatch('parse_iso_timestamp', 'parity')(expr)) }}{% endmacro %}
{% macro default__parse_iso_timestamp(expr) %}try_cast({{ expr }} as timestamptz){% endmacro %}
{% macro spark__parse_iso_timestamp(expr) %}to_timestamp({{ expr }}){% endmacro %}

{# Cast text to double / bigint; NULL when it does not parse. #}
{% macro try_double(expr) %}{{ return(adapter.dispatch('try_double', 'parity')(expr)) }}{% endmacro %}
{% macro default__try_double(expr) %}try_cast({{ expr }} as double){% endmacro %}
{% macro spark__try_double(expr) %}try_cast({{ expr }} as double){% endmacro %}

{% macro try_bigint(expr) %}{{ return(adapter.dispatch('try_bigint', 'parity')(expr)) }}{% endmacro %}
{% macro default__try_bigint(expr) %}try_cast({{ expr }} as bigint){% endmacro %}
{% macro spark__try_bigint(expr) %}try_cast({{ expr }} as bigint){% endmacro %}

{# trim(), the same on every engine: what DuckDB's trim() strips at either end (`side`: both,
   leading = ltrim, trailing = rtrim), the 17 Unicode space separators (category Zs: U+0020,
   U+00A0, U+1680, U+2000..U+200A, U+202F, U+205F, U+3000), never tabs or line breaks. Spark's
   trim() strips U+0020 only, so a value with a no-break or em space around it staged
   differently there; its version names the same set (parity.customer_keys strips it in Python).
   tests/parity/test_trim_text.py checks the set against DuckDB over every code point,
   tests/scale/test_trim_on_spark.py Spark's version on Spark. #}
{% macro trim_text(expr, side='both') %}{{ return(adapter.dispatch('trim_text', 'parity')(expr, side)) }}{% endmacro %}
{% macro default__trim_text(expr, side='both') %}{{ {'both': 'trim', 'leading': 'ltrim', 'trailing': 'rtrim'}[side] }}({{ expr }}){% endmacro %}
{% macro spark__trim_text(expr, side='both') %}trim({{ side | upper }} '{{ unicode_space_separators() }}' from {{ expr }}){% endmacro %}
{# As a Spark SQL string literal (Spark unescapes \uXXXX there). #}
{% macro unicode_space_separators() %}\u0020\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000{% endmacro %}

{# One-way hash of a PII value (normalised first) so it can join but never be read. #}
{% macro hash_pii(expr) %}{{ return(adapter.dispatch('hash_pii', 'parity')(expr)) }}{% endmacro %}
{% macro default__hash_pii(expr) %}sha256(lower({{ trim_text(expr) }})){% endmacro %}
{% macro spark__hash_pii(expr) %}sha2(lower({{ trim_text(expr) }}), 256){% endmacro %}

{# A field of a JSON text, as text; NULL when the text is not valid JSON or lacks the key. #}
{% macro json_text(expr, key) %}{{ return(adapter.dispatch('json_text', 'parity')(expr, key)) }}{% endmacro %}
{% macro default__json_text(expr, key) %}case when json_valid({{ expr }}) then json_extract_string({{ expr }}, '$.{{ key }}') end{% endmacro %}
{% macro spark__json_text(expr, key) %}get_json_object({{ expr }}, '$.{{ key }}'){% endmacro %}

{% macro is_valid_json(expr) %}{{ return(adapter.dispatch('is_valid_json', 'parity')(expr)) }}{% endmacro %}
{% macro default__is_valid_json(expr) %}coalesce(json_valid({{ expr }}), false){% endmacro %}
{% macro spark__is_valid_json(expr) %}(from_json({{ expr }}, 'map<string,string>') is not null){% endmacro %}

{# Regular-expression full match. #}
{% macro matches(expr, pattern) %}{{ return(adapter.dispatch('matches', 'parity')(expr, pattern)) }}{% endmacro %}
{% macro default__matches(expr, pattern) %}regexp_full_match({{ expr }}, '{{ pattern }}'){% endmacro %}
{# Spark unescapes backslashes in string literals: patterns pass with theirs doubled. #}
{% macro spark__matches(expr, pattern) %}({{ expr }} rlike '^(?:{{ pattern | replace('\\', '\\\\') }})$'){% endmacro %}

{# Add (possibly negative) whole days / hours to a timestamp. #}
{% macro add_days(expr, days) %}{{ return(adapter.dispatch('add_days', 'parity')(expr, days)) }}{% endmacro %}
{% macro default__add_days(expr, days) %}({{ expr }} + to_days(cast({{ days }} as integer))){% endmacro %}
{% macro spark__add_days(expr, days) %}({{ expr }} + make_interval(0, 0, 0, {{ days }})){% endmacro %}

{% macro add_hours(expr, hours) %}{{ return(adapter.dispatch('add_hours', 'parity')(expr, hours)) }}{% endmacro %}
{% macro default__add_hours(expr, hours) %}({{ expr }} + to_hours(cast({{ hours }} as integer))){% endmacro %}
{% macro spark__add_hours(expr, hours) %}({{ expr }} + make_interval(0, 0, 0, 0, {{ hours }})){% endmacro %}

{# Whole days between two timestamps (end - start): UTC calendar days crossed, as date_diff('day')
   with the session in UTC. DuckDB counts them from epoch microseconds, because date_diff on
   timestamptz goes through the ICU calendar (~4 us a row: 90 s on the 10M build's mart). #}
{% macro days_between(start, end) %}{{ return(adapter.dispatch('days_between', 'parity')(start, end)) }}{% endmacro %}
{% macro default__days_between(start, end) %}cast(floor(epoch_us({{ end }}) / 86400000000.0) - floor(epoch_us({{ start }}) / 86400000000.0) as bigint){% endmacro %}
{% macro spark__days_between(start, end) %}cast(datediff({{ end }}, {{ start }}) as bigint){% endmacro %}

{# Midnight UTC of the day after a timestamp. #}
{% macro next_midnight(expr) %}{{ return(adapter.dispatch('next_midnight', 'parity')(expr)) }}{% endmacro %}
{% macro default__next_midnight(expr) %}(date_trunc('day', {{ expr }}) + interval 1 day){% endmacro %}
{% macro spark__next_midnight(expr) %}(date_trunc('DAY', {{ expr }}) + interval 1 day){% endmacro %}

{# A one-column relation `i` with the integers 0 .. n-1. #}
{% macro integer_series(n) %}{{ return(adapter.dispatch('integer_series', 'parity')(n)) }}{% endmacro %}
{% macro default__integer_series(n) %}select cast(range as bigint) as i from range({{ n }}){% endmacro %}
{% macro spark__integer_series(n) %}select explode(sequence(cast(0 as bigint), cast({{ n }} - 1 as bigint))) as i{% endmacro %}

{# Whole weeks from start to end, rounded down (negative when end is before start). With snapshots
   every 7 days back from `end`, floor_weeks_between(x, end) is the weeks_before_end of the
   first snapshot at or after x. Microsecond-exact: no time zone, no calendar. #}
{% macro floor_weeks_between(start, end) %}{{ return(adapter.dispatch('floor_weeks_between', 'parity')(start, end)) }}{% endmacro %}
{% macro default__floor_weeks_between(start, end) %}cast(floor((epoch_us({{ end }}) - epoch_us({{ start }})) / 604800000000.0) as bigint){% endmacro %}
{% macro spark__floor_weeks_between(start, end) %}cast(floor((unix_micros({{ end }}) - unix_micros({{ start }})) / 604800000000.0) as bigint){% endmacro %}

{# Microseconds since 1970-01-01 UTC: exact integer time arithmetic (a day is 86400000000 in
   UTC), far cheaper than interval arithmetic on timestamptz, which goes through ICU on DuckDB. #}
{% macro epoch_microseconds(expr) %}{{ return(adapter.dispatch('epoch_microseconds', 'parity')(expr)) }}{% endmacro %}
{% macro default__epoch_microseconds(expr) %}epoch_us({{ expr }}){% endmacro %}
{% macro spark__epoch_microseconds(expr) %}unix_micros({{ expr }}){% endmacro %}

{# Integer division, truncating (the same as floor for the non-negative values it is used on). #}
{% macro integer_divide(numerator, denominator) %}{{ return(adapter.dispatch('integer_divide', 'parity')(numerator, denominator)) }}{% endmacro %}
{% macro default__integer_divide(numerator, denominator) %}({{ numerator }} // {{ denominator }}){% endmacro %}
{% macro spark__integer_divide(numerator, denominator) %}({{ numerator }} div {{ denominator }}){% endmacro %}

{#- ---- Raw records and strict parsing (issue 13) --------------------------------------------- -#}

{# The physical line number of a row read by a line reader (one text column per line): rows come
   in file order (DuckDB preserves insertion order for a single-file scan). #}
{% macro file_line_number() %}{{ return(adapter.dispatch('file_line_number', 'parity')()) }}{% endmacro %}
{% macro default__file_line_number() %}row_number() over (){% endmacro %}
{# Spark's row_number() is an int: bigint, as DuckDB's (types are compared across engines). #}
{% macro spark__file_line_number() %}cast(row_number() over (order by monotonically_increasing_id() nulls last) as bigint){% endmacro %}

{# Partial regular-expression match (anywhere in the text). #}
{% macro contains_match(expr, pattern) %}{{ return(adapter.dispatch('contains_match', 'parity')(expr, pattern)) }}{% endmacro %}
{% macro default__contains_match(expr, pattern) %}regexp_matches({{ expr }}, '{{ pattern }}'){% endmacro %}
{% macro spark__contains_match(expr, pattern) %}({{ expr }} rlike '{{ pattern | replace('\\', '\\\\') }}'){% endmacro %}

{# Replace every match of a pattern by a fixed text (no back-references: they differ by engine). #}
{% macro replace_all_matches(expr, pattern, replacement) %}{{ return(adapter.dispatch('replace_all_matches', 'parity')(expr, pattern, replacement)) }}{% endmacro %}
{% macro default__replace_all_matches(expr, pattern, replacement) %}regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}', 'g'){% endmacro %}
{% macro spark__replace_all_matches(expr, pattern, replacement) %}regexp_replace({{ expr }}, '{{ pattern | replace('\\', '\\\\') }}', '{{ replacement }}'){% endmacro %}

{# Every match of a pattern's first group, as a list. #}
{% macro all_matches(expr, pattern) %}{{ return(adapter.dispatch('all_matches', 'parity')(expr, pattern)) }}{% endmacro %}
{% macro default__all_matches(expr, pattern) %}regexp_extract_all({{ expr }}, '{{ pattern }}', 1){% endmacro %}
{% macro spark__all_matches(expr, pattern) %}regexp_extract_all({{ expr }}, '{{ pattern | replace('\\', '\\\\') }}', 1){% endmacro %}

{# SHA-256 of a text exactly as it is (hash_pii normalises first), hex. #}
{% macro sha256_hex(expr) %}{{ return(adapter.dispatch('sha256_hex', 'parity')(expr)) }}{% endmacro %}
{% macro default__sha256_hex(expr) %}sha256({{ expr }}){% endmacro %}
{% macro spark__sha256_hex(expr) %}sha2({{ expr }}, 256){% endmacro %}

{# Split a text on a literal delimiter into a list. #}
{% macro split_text(expr, delimiter) %}{{ return(adapter.dispatch('split_text', 'parity')(expr, delimiter)) }}{% endmacro %}
{% macro default__split_text(expr, delimiter) %}string_split({{ expr }}, '{{ delimiter }}'){% endmacro %}
{# Spark's split takes a regex: the delimiter is quoted with \Q..\E; limit -1 keeps trailing empties. #}
{% macro spark__split_text(expr, delimiter) %}split({{ expr }}, '\\Q{{ delimiter }}\\E', -1){% endmacro %}

{# Lists: 1-based element (NULL when out of range), size, 1-based position (0/NULL when absent),
   element-wise transform, and whether a list repeats a value. #}
{# Position (1-based) of a text in another; 0 when absent. #}
{% macro text_position(text, part) %}{{ return(adapter.dispatch('text_position', 'parity')(text, part)) }}{% endmacro %}
{% macro default__text_position(text, part) %}strpos({{ text }}, {{ part }}){% endmacro %}
{% macro spark__text_position(text, part) %}instr({{ text }}, {{ part }}){% endmacro %}

{% macro list_element(list_expr, index) %}{{ return(adapter.dispatch('list_element', 'parity')(list_expr, index)) }}{% endmacro %}
{% macro default__list_element(list_expr, index) %}list_extract({{ list_expr }}, {{ index }}){% endmacro %}
{% macro spark__list_element(list_expr, index) %}try_element_at({{ list_expr }}, cast({{ index }} as int)){% endmacro %}

{% macro list_size(list_expr) %}{{ return(adapter.dispatch('list_size', 'parity')(list_expr)) }}{% endmacro %}
{% macro default__list_size(list_expr) %}len({{ list_expr }}){% endmacro %}
{% macro spark__list_size(list_expr) %}size({{ list_expr }}){% endmacro %}

{% macro list_index_of(list_expr, value) %}{{ return(adapter.dispatch('list_index_of', 'parity')(list_expr, value)) }}{% endmacro %}
{% macro default__list_index_of(list_expr, value) %}list_position({{ list_expr }}, {{ value }}){% endmacro %}
{% macro spark__list_index_of(list_expr, value) %}nullif(array_position({{ list_expr }}, {{ value }}), 0){% endmacro %}

{# CSV field values: a quoted field loses its quotes and "" becomes ". #}
{% macro unquote_csv_fields(list_expr) %}{{ return(adapter.dispatch('unquote_csv_fields', 'parity')(list_expr)) }}{% endmacro %}
{% macro default__unquote_csv_fields(list_expr) %}list_transform({{ list_expr }}, f -> case when starts_with(f, '"') then replace(f[2:-2], '""', '"') else f end){% endmacro %}
{% macro spark__unquote_csv_fields(list_expr) %}transform({{ list_expr }}, f -> case when startswith(f, '"') then replace(substring(f, 2, length(f) - 2), '""', '"') else f end){% endmacro %}

{% macro list_has_duplicates(list_expr) %}{{ return(adapter.dispatch('list_has_duplicates', 'parity')(list_expr)) }}{% endmacro %}
{% macro default__list_has_duplicates(list_expr) %}(len({{ list_expr }}) <> len(list_distinct({{ list_expr }}))){% endmacro %}
{% macro spark__list_has_duplicates(list_expr) %}(size({{ list_expr }}) <> size(array_distinct({{ list_expr }}))){% endmacro %}

{# The keys of a JSON object in document order, repeated keys included (NULL for non-objects);
   the caller checks that the text is valid JSON (DuckDB raises on invalid JSON). #}
{% macro json_object_key_list(expr) %}{{ return(adapter.dispatch('json_object_key_list', 'parity')(expr)) }}{% endmacro %}
{% macro default__json_object_key_list(expr) %}json_keys({{ expr }}){% endmacro %}
{% macro spark__json_object_key_list(expr) %}json_object_keys({{ expr }}){% endmacro %}

{# JSON type of the document root or of one field: OBJECT, ARRAY, VARCHAR, BIGINT, UBIGINT,
   DOUBLE, BOOLEAN, NULL (the field absent: NULL). Spark parses the text as a VARIANT and names
   the type of the value from it (schema_of_variant), so a string "42" and a number 42 differ on
   both engines (get_json_object would lose the quotes); NULL where the text is not valid JSON. #}
{% macro json_value_type(expr, key=none) %}{{ return(adapter.dispatch('json_value_type', 'parity')(expr, key)) }}{% endmacro %}
{% macro default__json_value_type(expr, key=none) %}case when json_valid({{ expr }}) then {% if key is none %}json_type({{ expr }}){% else %}json_type({{ expr }}, '$.{{ key }}'){% endif %} end{% endmacro %}
{% macro spark__json_value_type(expr, key=none) -%}
{%- set parsed = "try_parse_json(" ~ expr ~ ")" -%}
{%- set v = parsed if key is none else "try_variant_get(" ~ parsed ~ ", '$." ~ key ~ "', 'variant')" -%}
{%- set t = "schema_of_variant(" ~ v ~ ")" -%}
case
    when {{ t }} is null then null
    when {{ t }} = 'STRING' then 'VARCHAR'
    when {{ t }} in ('BIGINT', 'INT', 'SMALLINT', 'TINYINT') then 'BIGINT'
    when {{ t }} = 'BOOLEAN' then 'BOOLEAN'
    when {{ t }} = 'VOID' then 'NULL'
    when {{ t }} like 'ARRAY%' then 'ARRAY'
    when {{ t }} like 'OBJECT%' then 'OBJECT'
    -- an integer beyond bigint: DuckDB's UBIGINT up to 2^64 - 1, a DOUBLE past it
    when {{ t }} like 'DECIMAL(%,0)' and try_variant_get({{ v }}, '$', 'decimal(38,0)') between 0 and 18446744073709551615 then 'UBIGINT'
    else 'DOUBLE'
end
{%- endmacro %}

{# A timestamp literal (UTC) from an ISO text known at compile time. #}
{% macro utc_timestamp_literal(iso_text) %}{{ return(adapter.dispatch('utc_timestamp_literal', 'parity')(iso_text)) }}{% endmacro %}
{% macro default__utc_timestamp_literal(iso_text) %}cast('{{ iso_text }}' as timestamptz){% endmacro %}
{% macro spark__utc_timestamp_literal(iso_text) %}to_timestamp('{{ iso_text }}'){% endmacro %}

{# Text aggregate in a given order (the lines of a record that spans lines). #}
{% macro ordered_text_agg(expr, separator, order_expr) %}{{ return(adapter.dispatch('ordered_text_agg', 'parity')(expr, separator, order_expr)) }}{% endmacro %}
{% macro default__ordered_text_agg(expr, separator, order_expr) %}string_agg({{ expr }}, {{ separator }} order by {{ order_expr }}){% endmacro %}
{% macro spark__ordered_text_agg(expr, separator, order_expr) %}array_join(transform(array_sort(collect_list(struct({{ order_expr }} as sort_key, {{ expr }} as part))), s -> s.part), {{ separator }}){% endmacro %}

{# Every element trimmed of surrounding blanks (trim_text). #}
{% macro trim_list(list_expr) %}{{ return(adapter.dispatch('trim_list', 'parity')(list_expr)) }}{% endmacro %}
{% macro default__trim_list(list_expr) %}list_transform({{ list_expr }}, f -> {{ trim_text('f') }}){% endmacro %}
{% macro spark__trim_list(list_expr) %}transform({{ list_expr }}, f -> {{ trim_text('f') }}){% endmacro %}

{# One row per integer start .. stop - 1 (in a select list: the row is repeated for each). #}
{% macro explode_range(start, stop) %}{{ return(adapter.dispatch('explode_range', 'parity')(start, stop)) }}{% endmacro %}
{% macro default__explode_range(start, stop) %}unnest(range({{ start }}, {{ stop }})){% endmacro %}
{% macro spark__explode_range(start, stop) %}explode(sequence({{ start }}, {{ stop }} - 1)){% endmacro %}

{# The JSON types (as json_value_type) / texts (as json_text) of several fields of one JSON
   object, in the order of `keys`, as a list: the document is parsed once, not once per field
   (a key `none` is the document itself). NULL when the text is not valid JSON; json_texts
   expects its caller to have checked that. #}
{% macro json_value_types(expr, keys) %}{{ return(adapter.dispatch('json_value_types', 'parity')(expr, keys)) }}{% endmacro %}
{% macro default__json_value_types(expr, keys) %}case when json_valid({{ expr }}) then json_type({{ expr }}, [{% for k in keys %}'${{ '.' ~ k if k is not none }}'{{ ', ' if not loop.last }}{% endfor %}]) end{% endmacro %}
{% macro spark__json_value_types(expr, keys) %}array({% for k in keys %}{{ spark__json_value_type(expr, k) }}{{ ', ' if not loop.last }}{% endfor %}){% endmacro %}

{% macro json_texts(expr, keys) %}{{ return(adapter.dispatch('json_texts', 'parity')(expr, keys)) }}{% endmacro %}
{% macro default__json_texts(expr, keys) %}json_extract_string({{ expr }}, [{% for k in keys %}'$.{{ k }}'{{ ', ' if not loop.last }}{% endfor %}]){% endmacro %}
{% macro spark__json_texts(expr, keys) %}array({% for k in keys %}get_json_object({{ expr }}, '$.{{ k }}'){{ ', ' if not loop.last }}{% endfor %}){% endmacro %}

{# Whether a list holds a value (list_has_any over a literal list is ~6x slower on DuckDB). #}
{% macro list_has(list_expr, value) %}{{ return(adapter.dispatch('list_has', 'parity')(list_expr, value)) }}{% endmacro %}
{% macro default__list_has(list_expr, value) %}coalesce(list_contains({{ list_expr }}, {{ value }}), false){% endmacro %}
{% macro spark__list_has(list_expr, value) %}coalesce(array_contains({{ list_expr }}, {{ value }}), false){% endmacro %}

{# Whether a text holds a control character (tab, LF, CR allowed), or (in JSON, where raw ones
   are invalid except DEL) DEL or one escaped in a string (\u0000 .. \u001f, \u007f). DuckDB: a full match of the allowed characters is ~2x faster
   than searching for a forbidden one; the escaped form is only searched where a "\u00" occurs
   (a CASE, not AND: DuckDB evaluates both sides of an AND in a select list). #}
{% macro has_control_character(expr) %}{{ return(adapter.dispatch('has_control_character', 'parity')(expr)) }}{% endmacro %}
{% macro default__has_control_character(expr) %}(not regexp_full_match({{ expr }}, '[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F]*')){% endmacro %}
{% macro spark__has_control_character(expr) %}({{ expr }} rlike '[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F]'){% endmacro %}

{% macro has_escaped_control_character(expr) %}{{ return(adapter.dispatch('has_escaped_control_character', 'parity')(expr)) }}{% endmacro %}
{% macro default__has_escaped_control_character(expr) %}(contains({{ expr }}, chr(127)) or case when contains({{ expr }}, '\u00') then regexp_matches({{ expr }}, '\\u00[01][0-9a-fA-F]|\\u007[fF]') else false end){% endmacro %}
{% macro spark__has_escaped_control_character(expr) %}(instr({{ expr }}, chr(127)) > 0 or {{ expr }} rlike '\\\\u00[01][0-9a-fA-F]|\\\\u007[fF]'){% endmacro %}

{# How many elements of a list are not NULL. #}
{% macro list_count_present(list_expr) %}{{ return(adapter.dispatch('list_count_present', 'parity')(list_expr)) }}{% endmacro %}
{% macro default__list_count_present(list_expr) %}list_count({{ list_expr }}){% endmacro %}
{% macro spark__list_count_present(list_expr) %}size(filter({{ list_expr }}, x -> x is not null)){% endmacro %}

{#- ---- Column types (issue 16) ------------------------------------------------------------- -#}

{# The engine's name for a column type of the project's one vocabulary: the contract `data_type`s
   (varchar, bigint, double, boolean, timestamptz = a UTC instant), which Feast's type map reads
   from the manifest, so they stay the same on every engine. Spark has no varchar without a length
   and no timestamptz: its `timestamp` is the instant type (TIMESTAMP_LTZ). Write casts as
   cast(x as {{ engine_type('varchar') }}). #}
{% macro engine_type(name) %}{{ return(adapter.dispatch('engine_type', 'parity')(name)) }}{% endmacro %}
{% macro default__engine_type(name) %}{{ return(name) }}{% endmacro %}
{% macro spark__engine_type(name) %}
    {%- set spark_names = {'varchar': 'string', 'text': 'string', 'timestamptz': 'timestamp',
                           'timestamp with time zone': 'timestamp', 'timestamp': 'timestamp_ntz'} -%}
    {{ return(spark_names.get(name | trim | lower, name)) }}
{% endmacro %}

{# dbt's own cast (contracts build `cast(null as <data_type>)` from the YAML types to compare them
   with the model's columns) speaks the same vocabulary on Spark. #}
{% macro spark__cast(field, type) %}cast({{ field }} as {{ engine_type(type) }}){% endmacro %}

{# Written after `<cte name> as` where a CTE is read more than once: DuckDB otherwise materializes
   it whole before the filters of each reader apply (quarantine_<client> read a client's staged
   transactions, raw text included, into one 3.4M-row CTE at 10M: 1.2-2 s of an incremental run's
   quarantine vs 0.06-0.16 s inlined, same rows). Spark inlines CTEs itself and has no such keyword. #}
{% macro cte_inlined() %}{{ return(adapter.dispatch('cte_inlined', 'parity')()) }}{% endmacro %}
{% macro default__cte_inlined() %}not materialized{% endmacro %}
{% macro spark__cte_inlined() %}{% endmacro %}
