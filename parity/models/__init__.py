"""Model runtime shared by training, serving and batch: the one preparation function, the model
registry (storage, loaded model and calibrator), TreeSHAP from tables and customer segments.

May import: ``parity`` utilities and ``parity.features``. Never ``ingest``.
"""
