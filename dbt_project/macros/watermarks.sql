{#-
  Per-client watermarks: the time up to which a client's data is known complete. The rule is
  declared per client in `vars.client_watermarks` (dbt_project.yml); a client not listed there
  uses the default, newest_arrival. Rules (see README "Point in time"):
    newest_arrival                       midnight UTC after the client's newest arrival (loaded_at)
    fixed, watermark_at: '<ISO instant>' a declared instant, e.g. the date of the client's drop
    newest_event_plus_delay, delay_hours: N
                                         the client's newest transacted_at + N hours (the client
                                         is known to deliver everything within N hours)
  declared_watermark_rules() renders the declarations as a relation
  (client_id, watermark_rule, declared_watermark_at, delay_hours), validated at compile time so
  a typo fails the build naming the client and the field instead of silently using the default.
-#}

{% macro watermark_rule_names() %}{{ return(['newest_arrival', 'fixed', 'newest_event_plus_delay']) }}{% endmacro %}

{% macro declared_watermark_rules() -%}
    {%- set declared = var('client_watermarks', {}) or {} -%}
    {%- if declared is not mapping -%}
        {{ exceptions.raise_compiler_error("vars.client_watermarks must be a mapping {<client>: {rule: ...}}; got " ~ declared) }}
    {%- endif -%}
    {%- set rows = [] -%}
    {%- for client, spec in declared.items() -%}
        {%- do rows.append(_watermark_rule_row(client, spec)) -%}
    {%- endfor -%}
    {%- if rows -%}
        {{ rows | join('\n    union all\n    ') }}
    {%- else -%}
        select
            cast(null as {{ engine_type('varchar') }}) as client_id,
            cast(null as {{ engine_type('varchar') }}) as watermark_rule,
            cast(null as {{ engine_type('timestamptz') }}) as declared_watermark_at,
            cast(null as bigint) as delay_hours
        where 1 = 0
    {%- endif -%}
{%- endmacro %}

{% macro _watermark_rule_row(client, spec) -%}
    {%- set where = "vars.client_watermarks." ~ client -%}
    {%- if client not in var('clients') -%}
        {{ exceptions.raise_compiler_error(where ~ ": '" ~ client ~ "' is not in vars.clients " ~ var('clients')) }}
    {%- endif -%}
    {%- if spec is not mapping or 'rule' not in spec -%}
        {{ exceptions.raise_compiler_error(where ~ ": expected a mapping with `rule` (one of " ~ watermark_rule_names() ~ "); got " ~ spec) }}
    {%- endif -%}
    {%- set rule = spec['rule'] -%}
    {%- set allowed = {'newest_arrival': ['rule'], 'fixed': ['rule', 'watermark_at'],
                       'newest_event_plus_delay': ['rule', 'delay_hours']} -%}
    {%- if rule not in allowed -%}
        {{ exceptions.raise_compiler_error(where ~ ".rule: unknown rule '" ~ rule ~ "' (expected one of " ~ watermark_rule_names() ~ ")") }}
    {%- endif -%}
    {%- for key in spec -%}
        {%- if key not in allowed[rule] -%}
            {{ exceptions.raise_compiler_error(where ~ ": field `" ~ key ~ "` does not apply to rule '" ~ rule ~ "' (fields: " ~ allowed[rule] ~ ")") }}
        {%- endif -%}
    {%- endfor -%}
    {%- set declared_at = 'null' -%}
    {%- set delay = 'null' -%}
    {%- if rule == 'fixed' -%}
        {%- set text = spec.get('watermark_at') -%}
        {%- if text is not string -%}
            {{ exceptions.raise_compiler_error(where ~ ".watermark_at: a quoted ISO-8601 instant with its UTC offset is required, e.g. '2026-05-01T00:00:00+00:00'; got " ~ text) }}
        {%- endif -%}
        {%- set parsed = _parse_instant(text) -%}
        {%- if parsed is none or parsed.tzinfo is none -%}
            {{ exceptions.raise_compiler_error(where ~ ".watermark_at: '" ~ text ~ "' is not an ISO-8601 instant with a UTC offset (e.g. '2026-05-01T00:00:00+00:00')") }}
        {%- endif -%}
        {%- set declared_at = "'" ~ parsed.isoformat() ~ "'" -%}
    {%- elif rule == 'newest_event_plus_delay' -%}
        {%- set hours = spec.get('delay_hours') -%}
        {%- if hours is not number or hours != hours | int or hours < 0 -%}
            {{ exceptions.raise_compiler_error(where ~ ".delay_hours: a whole number of hours >= 0 is required; got " ~ hours) }}
        {%- endif -%}
        {%- set delay = hours | int -%}
    {%- endif -%}
    select
        cast('{{ client }}' as {{ engine_type('varchar') }}) as client_id,
        cast('{{ rule }}' as {{ engine_type('varchar') }}) as watermark_rule,
        cast({{ declared_at }} as {{ engine_type('timestamptz') }}) as declared_watermark_at,
        cast({{ delay }} as bigint) as delay_hours
{%- endmacro %}

{% macro _parse_instant(text) -%}
    {#- Python's fromisoformat (3.11 accepts 'Z'); none when the text is not an instant -#}
    {%- set parsed = none -%}
    {%- if modules.re.match('^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:?\\d{2})$', text) -%}
        {%- set parsed = modules.datetime.datetime.fromisoformat(text.replace('Z', '+00:00')) -%}
    {%- endif -%}
    {{ return(parsed) }}
{%- endmacro %}
