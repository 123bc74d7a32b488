"""trace and forget on the scale profile's online store: Feast's Redis (a real server, the
session's `redis_feature_data`). A planted customer's hash is counted, deleted by forget, and
read as missing afterwards; other customers stay online."""

from __future__ import annotations

import struct
from datetime import datetime, timezone

import pytest

from parity.features.online_manifest import string_key_prefix
from parity.governance import trace as tracing
from parity.governance.customer import parse_customer
from parity.governance.forget import forget
from parity.governance.redis_store import entity_key, targets

pytestmark = pytest.mark.data


def test_trace_counts_and_forget_deletes_the_customer_in_redis(redis_feature_data):
    from parity.features.feature_store import store_config
    from parity.features.online import open_reader
    from parity.features.online_redis import connect

    settings = redis_feature_data
    [target] = targets(settings)
    client = connect(store_config(settings)["online_store"])
    # a planted customer: a copy of a materialized customer's hash under a key nobody else uses
    prefix = string_key_prefix("customer_id")
    real_key = next(k for k in client.scan_iter(match=b"*" + target.project.encode(), count=1000)
                    if k.startswith(prefix))
    size = struct.unpack("<I", real_key[len(prefix):len(prefix) + 4])[0]
    real = real_key[len(prefix) + 4:len(prefix) + 4 + size].decode()
    planted = parse_customer("acme:ZZ-ERASE-1", settings.clients)
    fields = client.hgetall(real_key)
    client.hset(entity_key(planted, target.project), mapping=fields)
    views = sum(f.startswith(b"_ts:") for f in fields)

    before = tracing.trace(settings, planted)
    assert before.problems == []
    [place] = [p for p in before.places if p.area == "online_store"]
    assert place.location.startswith("redis://") and place.rows == len(fields) - views > 0

    def no_rebuild(s):  # the rebuild and materialization are the embedded test's (test_forget.py)
        return "unchanged"

    report = forget(settings, planted, "tester", no_rebuild)
    assert any(line.startswith("1 key;") for line in report.deleted), report.deleted
    assert report.not_erased == []
    # the erasure record never names the customer in clear (nor does any place's location)
    record = tracing.erasure_record_path(settings, planted).read_text()
    assert planted.key not in record and planted.source_id not in record
    assert report.after is not None and report.after.held_rows == 0 and report.after.problems == []
    assert client.exists(entity_key(planted, target.project)) == 0
    reader = open_reader(settings, "churn_v1")
    try:
        got = reader.read_columns([planted.key, real], datetime.now(timezone.utc))
    finally:
        reader.close()
    assert got["__found__"] == [False, True]
    client.close()


def test_an_embedded_profile_folder_used_with_the_scale_profile_has_its_redis_searched(tmp_path, monkeypatch):
    from parity.config import Settings

    for name in ("PARITY_FEAST_CONFIG", "PARITY_REDIS_CONNECTION", "PARITY_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    embedded = Settings(data_dir=tmp_path, profile="embedded")
    assert targets(embedded) == []  # SQLite online store: its file is searched as a file
    (tmp_path / "feast-scale").mkdir()
    monkeypatch.setenv("PARITY_REDIS_CONNECTION", "127.0.0.1:1")
    [found] = targets(embedded)
    assert found.label == "redis://127.0.0.1:1/parity"
    problems: list[str] = []  # nothing answers there: said, never a silent 0
    from parity.governance.redis_store import redis_places

    assert redis_places(embedded, parse_customer("acme:AC-1", embedded.clients), problems) == []
    assert len(problems) == 1 and problems[0].startswith("redis://127.0.0.1:1/parity: not searched")
