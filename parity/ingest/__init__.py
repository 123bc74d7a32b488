"""Building data: raw drops (datagen), the pre-flight check of raw files, running dbt and
reading the warehouse (warehouse). Owns everything between ``data/raw`` and the published warehouse/marts.

May import: ``parity`` utilities (config, cli, jsonable, yaml_config). Never ``features``/``models``.
"""
