"""Features: Feast definitions derived from the dbt manifest, the store classes, the online
manifest and readers, the retrieval helpers shared by training and serving, and the parity check.

May import: ``parity`` utilities and ``parity.ingest`` (to read the warehouse). Never ``models``.
"""
