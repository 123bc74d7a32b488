{#- The model has between min_rows and max_rows rows (max optional): catches empty or exploded outputs. -#}
{% test row_count_between(model, min_rows, max_rows=none) %}
with counts as (select count(*) as n from {{ model }})
select * from counts
where n < {{ min_rows }}{% if max_rows is not none %} or n > {{ max_rows }}{% endif %}
{% endtest %}
