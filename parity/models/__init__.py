"""Model runtime shared by training, serving and batch: the one preparation function (``prepare``),
the registry's storage (``registry``), the loaded model and its calibrator (``loaded``), TreeSHAP
from tables (``treeshap``) and customer segments (``segments``).

May import: ``parity`` utilities and ``parity.features``. Never ``ingest``.
"""
