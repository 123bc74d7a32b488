"""A customer named by an operator: ``<client>:<id>``, checked against the onboarded clients."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from parity.customer_keys import CustomerKeys, customer_keys


class CustomerError(ValueError):
    """A customer reference that is not ``<client>:<id>`` of an onboarded client."""


@dataclass(frozen=True)
class Customer:
    """The canonical key staging gives a customer: ``client_id || ':' || source_customer_id``."""

    client_id: str
    source_id: str

    @property
    def key(self) -> str:
        return f"{self.client_id}:{self.source_id}"

    @property
    def key_sha256(self) -> str:
        """The suppression list's form of the key (staging compares sha256 of customer_id)."""
        return key_sha256(self.key)


def key_sha256(key: str) -> str:
    """Hex sha256 of a canonical customer key, as dbt's sha256_hex(customer_id) computes it."""
    return hashlib.sha256(key.encode("utf8")).hexdigest()


def parse_customer(text: str, clients: tuple[str, ...], keys: CustomerKeys | None = None) -> Customer:
    """``acme:AC-000123`` -> Customer; the id is the canonical one (as in the marts, after
    staging's normalisation: `keys`, default the project's rules), not the raw text of the client's file."""
    client, sep, source = (text or "").strip().partition(":")
    if not sep or not client or not source.strip():
        raise CustomerError(f"customer {text!r}: expected <client>:<id>, e.g. acme:AC-000123 "
                            "(the canonical customer_id of the marts)")
    if client not in clients:
        raise CustomerError(f"customer {text!r}: unknown client '{client}' (clients: {', '.join(clients)})")
    if source != source.strip():
        raise CustomerError(f"customer {text!r}: the id has surrounding spaces; give the canonical id")
    # the client's declared id rule (its case), as staging applies it: 'cora:cr-00025' is the
    # customer staging keys 'cora:CR-00025', never "not found" while their data stays
    return Customer(client, (keys or customer_keys()).canonical(f"{client}:{source}").partition(":")[2])
