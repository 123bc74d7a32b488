"""Model runtime shared by training, serving and batch: the one preparation function (``prepare``),
the registry's storage (``registry``), the loaded model and its calibrator (``loaded``), TreeSHAP
from tables (``treeshap``), customer segments (``segments``) and reasons in plain words
(``reasons``: batch exports and the console).

May import: ``parity`` utilities and ``parity.features``. Never ``ingest``.
"""
