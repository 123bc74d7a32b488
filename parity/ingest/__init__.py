"""Building data: raw drops (datagen), the pre-flight check of raw files, running dbt
(warehouse; one dbt process per build: dbt_session), reading the warehouse (warehouse) and the column lineage of dbt's compiled SQL (column_lineage). Owns everything between ``data/raw`` and the published warehouse/marts.

May import: ``parity`` utilities (config, cli, jsonable, yaml_config). Never ``features``/``models``.
"""
