{#- accepted_values whose list is a dbt var (a list, or a mapping whose keys are the values), so the
    list has one home. NULL is accepted. -#}
{% test accepted_values_from_var(model, column_name, var_name) %}
{%- set accepted = var(var_name) -%}
{%- set values = accepted.keys() | list if accepted is mapping else accepted -%}
select {{ column_name }} as value, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
  and {{ column_name }} not in ({% for v in values %}'{{ v }}'{{ ', ' if not loop.last }}{% endfor %})
group by {{ column_name }}
{% endtest %}
