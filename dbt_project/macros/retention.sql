{#-
  Quarantine-sample retention (README "Privacy and governance"): a rejected record's redacted text
  (raw_record) is kept `quarantine_sample_days` days after its arrival (loaded_at), counted back
  from the start of the build's UTC day, so a rebuild from the raw drops never brings back a sample that
  `make retention` blanked (parity/governance/retention.py applies the same period to builds as
  they age). The row itself, its reason, file, line and hash stay: the reconciliation still counts
  it. The period's one home is vars.quarantine_sample_days (null keeps forever); the environment's
  PARITY_QUARANTINE_SAMPLE_DAYS overrides it for a run (parity.config.quarantine_sample_days reads
  both the same way; the tests set `none`, their drops being older than the period).
-#}

{# The period in days, or none (kept forever). #}
{% macro quarantine_sample_days() %}
    {%- set override = env_var('PARITY_QUARANTINE_SAMPLE_DAYS', '') | trim -%}
    {%- set days = (none if override | lower in ('none', 'null') else override) if override else var('quarantine_sample_days', none) -%}
    {%- if days is none -%}{{ return(none) }}{%- endif -%}
    {%- if days is string and days.isdigit() -%}{%- set days = days | int -%}{%- endif -%}
    {%- if days is not integer or days < 0 -%}
        {{ exceptions.raise_compiler_error("quarantine_sample_days (dbt_project.yml vars, or PARITY_QUARANTINE_SAMPLE_DAYS) must be a whole number of days >= 0 or null; got " ~ days) }}
    {%- endif -%}
    {{ return(days | int) }}
{% endmacro %}

{# The sample column as kept: NULL when the record arrived before the period (SQL text). The
   period is counted in whole UTC days back from the start of the build's day (the same cutoff as
   parity.governance.retention.sample_cutoff), so every build of one day keeps the same samples. #}
{% macro retained_sample(sample_column, loaded_at_column) %}
    {%- set days = quarantine_sample_days() -%}
    {%- if days is none -%}{{ sample_column }}
    {%- else -%}case when {{ loaded_at_column }} < {{ add_days(next_midnight(build_time()), -(days + 1)) }} then cast(null as {{ dbt.type_string() }}) else {{ sample_column }} end
    {%- endif -%}
{% endmacro %}
