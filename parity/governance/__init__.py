"""Governance and privacy: where a customer's data lives (``trace``), erasing it everywhere the
platform controls (``forget``), retention of logs, decisions and builds (``retention``), the
model risk register and archive (``risk``), and privacy-safe aggregates shared with clients
(``privacy``: minimum group size k and a per-client differential-privacy budget). Model
approvals are a registry rule and live in ``parity.models.approvals``; the suppression list that
staging applies lives in ``parity.suppression`` (dbt reads it through ``Settings.env``).

May import: ``parity`` utilities, ``parity.ingest``, ``parity.features`` and ``parity.models``.
"""
