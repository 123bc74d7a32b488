"""Features: Feast definitions derived from the dbt manifest, the store classes, the online
manifest and readers, the retrieval helpers shared by training and serving, the parity check and
the consistency check of the prediction log (consistency).

May import: ``parity`` utilities and ``parity.ingest`` (to read the warehouse). Never ``models``.
"""
