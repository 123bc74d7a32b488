"""The shared package that training, serving, batch and monitoring import (never the reverse).

Layers, one direction: ``ingest`` (building data) <- ``features`` (Feast) <- ``models`` (model
runtime); the utilities (config, cli, jsonable, yaml_config, report, reviews) import no sub-package; ``__main__``
and ``docs`` are entry points that wire them. tests/test_structure.py checks this.
"""
