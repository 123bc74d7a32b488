{#-
  Engine-specific SQL lives here, behind adapter.dispatch, so models stay portable.
  Each macro has a DuckDB implementation (the embedded default) and a Spark one
  (the scale-out profile); add `<engine>__<macro>` to support another engine.
-#}

{# Parse a string with a strftime format; NULL (never an error) when it does not parse. #}
{% macro parse_timestamp(expr, fmt) %}{{ return(adapter.dispatch('parse_timestamp', 'parity')(expr, fmt)) }}{% endmacro %}
{% macro default__parse_timestamp(expr, fmt) %}try_strptime({{ expr }}, '{{ fmt }}'){% endmacro %}
{% macro spark__parse_timestamp(expr, fmt) %}to_timestamp({{ expr }}, '{{ fmt | replace('%d','dd') | replace('%m','MM') | replace('%Y','yyyy') | replace('%H','HH') | replace('%M','mm') | replace('%S','ss') }}'){% endmacro %}

{# Interpret a naive local timestamp in time zone `tz` and return it as a UTC instant. #}
{% macro local_to_utc(expr, tz) %}{{ return(adapter.dispatch('local_to_utc', 'parity')(expr, tz)) }}{% endmacro %}
{% macro default__local_to_utc(expr, tz) %}timezone('{{ tz }}', {{ expr }}){% endmacro %}
{% macro spark__local_to_utc(expr, tz) %}to_utc_timestamp({{ expr }}, '{{ tz }}'){% endmacro %}

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

{# One-way hash of a PII value (normalised first) so it can join but never be read. #}
{% macro hash_pii(expr) %}{{ return(adapter.dispatch('hash_pii', 'parity')(expr)) }}{% endmacro %}
{% macro default__hash_pii(expr) %}sha256(lower(trim({{ expr }}))){% endmacro %}
{% macro spark__hash_pii(expr) %}sha2(lower(trim({{ expr }})), 256){% endmacro %}

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
{% macro spark__matches(expr, pattern) %}({{ expr }} rlike '^{{ pattern }}$'){% endmacro %}

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
{% macro spark__integer_series(n) %}select explode(sequence(0, {{ n }} - 1)) as i{% endmacro %}

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
