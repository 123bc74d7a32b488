"""`trace`: a customer is found in every store of a built data folder, raw lines through staging."""

from __future__ import annotations

import json

import duckdb
import pytest

from parity.governance import trace as tracing
from parity.governance.customer import CustomerError, parse_customer
from parity.governance.trace import _ranges

CLIENTS = ("acme", "bolt", "cora", "dune")


def test_a_customer_is_client_colon_canonical_id():
    customer = parse_customer("cora:CR-00009", CLIENTS)
    assert (customer.client_id, customer.source_id, customer.key) == ("cora", "CR-00009", "cora:CR-00009")
    assert len(customer.key_sha256) == 64
    # written as the client's file writes it: the same customer (the client's declared id case)
    assert parse_customer("cora:cr-00009", CLIENTS).key == "cora:CR-00009"
    assert parse_customer("bolt:B-12", CLIENTS).key == "bolt:b-12"
    for bad, said in (("CR-00009", "expected <client>:<id>"), ("zed:1", "unknown client 'zed'"),
                      ("acme:", "expected"), ("acme: AC-1", "surrounding spaces")):
        with pytest.raises(CustomerError, match=said):
            parse_customer(bad, CLIENTS)


def test_line_ranges_are_compact():
    assert _ranges([3, 4, 5, 9, 11, 12]) == "3-5, 9, 11-12"
    assert _ranges([]) == ""


def _messy_customer(settings) -> tuple[str, str]:
    """A cora customer whose raw id is spelled differently from its canonical id."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select customer_id, raw_record from staging.stg_cora__customers where quarantine_reason is null "
            "and customer_id in (select customer_id from marts.customer_features_weekly) order by line_number"
        ).fetchall()
    for key, raw in rows:
        if key.split(":", 1)[1] not in raw.split(",")[0]:  # e.g. ' cr-00056' in the file
            return key, raw
    pytest.skip("no cora customer with a differently spelled raw id")


@pytest.mark.data
def test_trace_finds_the_customer_in_every_store_and_its_raw_lines(feature_data, tmp_path):
    key, _ = _messy_customer(feature_data)
    customer = parse_customer(key, feature_data.clients)
    result = tracing.trace(feature_data, customer, with_records=True)
    assert result.problems == []
    where = {(p.area, p.location.rsplit("::", 1)[-1].rsplit("/", 1)[-1]): p for p in result.places}
    for table in ("staging.stg_cora__customers", "intermediate.int_customers_deduplicated",
                  "marts.customer_features_weekly"):
        assert ("warehouse", table) in where, table
    assert where[("parquet", "customer_features_weekly.parquet")].rows == where[
        ("warehouse", "marts.customer_features_weekly")].rows > 0
    online = [p for p in result.places if p.area == "online_store"]
    assert online and all(p.rows > 0 for p in online)
    # raw lines: through staging's mapping, and each named line really is the customer's record
    raw = [p for p in result.places if p.area == "raw"]
    assert raw and not any(p.erasable for p in raw)
    for place in raw:
        # physical lines: split on "\n" only (a record may hold other line-break characters)
        lines = open(place.location, "rb").read().decode("utf-8", "replace").split("\n")
        numbers = [int(n) for n in place.detail.removeprefix("lines ").split(", ") if "-" not in n]
        assert numbers and all(customer.source_id.lower() in lines[n - 1].lower() for n in numbers)
    # the export: places and records, as JSON and CSV
    paths = tracing.export(result, tmp_path / "access")
    body = json.loads(paths["json"].read_text())
    assert body["customer_id"] == key and body["held_rows"] == result.held_rows > 0
    assert all(r["customer_id"] == key for p in body["places"] if p["area"] == "parquet" for r in p["records"])
    assert paths["csv"].read_text().count("\n") == len(result.places) + 1


@pytest.mark.data
def test_an_unknown_customer_is_found_nowhere(feature_data):
    result = tracing.trace(feature_data, parse_customer("acme:AC-999999", feature_data.clients))
    assert result.places == [] and result.held_rows == 0
