{#-
  Several small non-negative counts carried in one bigint, in 21-bit fields: field i of x is
  (x div 2^(21 i)) mod 2^21. Sums of packed values are the packed sums as long as every field's
  total stays in [0, 2^21), so a running sum over one packed column replaces three (window and
  aggregate operators cost per column). Used for per-window transaction counts of a customer.
-#}
{% macro pack_counts(fields) -%}
    ({%- for expr in fields %}cast(coalesce({{ expr }}, 0) as bigint){% if not loop.first %} * {{ 2097152 ** loop.index0 }}{% endif %}{% if not loop.last %} + {% endif %}{% endfor -%})
{%- endmacro %}

{% macro unpack_count(packed, field, fields=3) -%}
    {%- if field == fields - 1 -%}{{ integer_divide(packed, 2097152 ** field) }}
    {%- elif field == 0 -%}({{ packed }} % 2097152)
    {%- else -%}({{ integer_divide(packed, 2097152 ** field) }} % 2097152){%- endif -%}
{%- endmacro %}
