"""Batch scoring on real generated data: rows = customers, no_features kept, batch == online,
exports, the CLI, and the dbt source + model over the results (with and without files)."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from batch.config import load_config
from batch.pipeline import read_customers, run_score
from parity.features.feature_store import materialized_until, open_store
from parity.features.freshness import max_feature_age
from parity.features.online import OnlineReader
from parity.models.loaded import load_current
from parity.models.segments import load_current as load_segments
from tests.batch.fixtures import private_copy

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def scored(drift_data, tmp_path_factory):
    """One batch run at the default as-of time (the materialization time) in a private folder."""
    settings = private_copy(drift_data, tmp_path_factory.mktemp("batch"))
    return settings, run_score(settings, load_config())


def _arrived_after_newest_snapshot(settings, customers: pd.DataFrame, at) -> set[str]:
    """Customers known after their client's newest snapshot at or before `at` (or whose client
    has none): they have no feature row at `at`."""
    mart = pd.read_parquet(settings.marts_dir / "customer_features_weekly.parquet", columns=["client_id", "snapshot_at"])
    newest = mart[mart["snapshot_at"] <= at].groupby("client_id")["snapshot_at"].max()
    known = pd.to_datetime(customers["first_loaded_at"], utc=True)
    snapshot = customers["client_id"].map(newest)
    return set(customers.loc[snapshot.isna() | (known > snapshot), "customer_id"])


def test_default_as_of_is_the_materialization_time_and_every_customer_is_scored(scored):
    settings, run = scored
    assert run.as_of == materialized_until(settings)
    customers = read_customers(settings)
    results = run.results
    assert len(results) == len(customers) and results["customer_id"].is_unique
    assert set(results["customer_id"]) == set(customers["customer_id"])
    # a customer known only after its client's newest snapshot (the fixed weekly grid: up to 6
    # days before the watermark; README "Point in time") has no feature row yet
    without = results["status"] == "no_features"
    assert set(results.loc[without, "customer_id"]) <= _arrived_after_newest_snapshot(settings, customers, run.as_of)
    results = results[~without]
    # every other customer is scored, except those whose newest features are older than the limit
    # (a client whose data ends weeks before the others', e.g. a monthly deliverer): stale
    limit = max_feature_age(settings.project_root)
    stale = results["as_of_at"] - results["features_at"] > limit
    assert (results.loc[~stale, "status"] == "ok").all()
    assert (results.loc[stale, "status"] == "stale_features").all()
    assert results.loc[stale, "score"].isna().all()
    assert (~stale).sum() > 0.7 * len(results)
    ok = results[~stale]
    assert ok["score"].between(0, 1).all()
    assert (ok["decision"] == (ok["score"] >= ok["threshold"])).all()
    on_disk = pd.read_parquet(run.results_path)
    assert len(on_disk) == len(run.results) and on_disk["as_of_at"].dt.tz is not None


def test_batch_scores_equal_online_scores_for_the_same_customers_at_the_same_time(scored):
    settings, run = scored
    sample = run.results[run.results["status"] == "ok"].sample(n=150, random_state=1)
    model = load_current(settings)
    assert model.version == run.model_version
    reader = OnlineReader(open_store(settings), model.feature_service)
    frame, found = reader.read_found(list(sample["customer_id"]), run.as_of)
    assert all(found)
    online = model.predict_proba(model.prepare(frame))[:, 1]
    np.testing.assert_allclose(sample["score"].to_numpy(), online, rtol=0, atol=1e-9)


def test_reasons_and_segments_are_filled_for_scored_customers(scored):
    settings, run = scored
    ok = run.results[run.results["status"] == "ok"]
    assert ok["reason_1"].notna().all()
    assert ok["reason_1"].str.endswith(("(raises risk)", "(lowers risk)")).all()
    assert ok["reason_1"].str.contains("no purchase for").any()
    model = load_segments(settings.registry_dir)
    assert run.segments_version == model.version
    assert ok["segment_id"].notna().all() and set(ok["segment_name"]) <= set(model.names)
    assert set(ok["segment_id"].astype(int)) <= set(range(model.k))
    assert ok["is_active"].any() and (~ok["is_active"]).any()  # inactive customers scored too, flagged


def test_per_client_exports_hold_each_clients_customers(scored):
    settings, run = scored
    assert sorted(run.exports) == sorted(settings.clients)  # one export per client in vars.clients
    for client, paths in run.exports.items():
        assert {p.suffix for p in paths} == {".csv", ".parquet"}
        csv = pd.read_csv(next(p for p in paths if p.suffix == ".csv"))
        parquet = pd.read_parquet(next(p for p in paths if p.suffix == ".parquet"))
        expected = run.results[run.results["client_id"] == client]
        assert len(csv) == len(parquet) == len(expected) > 0
        assert csv["customer_id"].str.startswith(f"{client}:").all()
        for column in ("customer_id", "score", "decision", "reason_1", "reason_2", "reason_3",
                       "segment_id", "segment_name"):
            assert column in csv.columns and column in parquet.columns
        assert "features" not in csv.columns
        np.testing.assert_allclose(csv["score"], expected["score"], atol=1e-6)


def test_a_customer_without_features_is_kept_not_dropped(drift_data, tmp_path):
    """Six days after a snapshot, customers who arrived since have no feature row yet."""
    settings = private_copy(drift_data, tmp_path)
    as_of = materialized_until(settings) - timedelta(days=1, seconds=1)
    run = run_score(settings, load_config(), as_of=as_of)
    customers = read_customers(settings)
    known = customers[pd.to_datetime(customers["first_loaded_at"], utc=True) <= as_of]
    assert len(run.results) == len(known)
    missing = run.results[run.results["status"] == "no_features"]
    assert len(missing) >= 1
    assert missing["score"].isna().all() and missing["decision"].isna().all()
    assert missing["reason_1"].isna().all() and missing["segment_id"].isna().all()
    # newcomers: known after their client's newest snapshot at or before as_of (the daily clients'
    # is 6 days before it; a monthly deliverer's can be weeks before)
    assert set(missing["customer_id"]) <= _arrived_after_newest_snapshot(settings, known, as_of)
    assert any("no_features" in m for m in run.messages)
    exported = pd.concat(pd.read_parquet(p) for paths in run.exports.values() for p in paths if p.suffix == ".parquet")
    assert set(missing["customer_id"]) <= set(exported["customer_id"])


def test_stale_features_are_kept_unscored_with_their_age_and_watermark(drift_data, tmp_path):
    """Past the limit after the data's end every customer with a feature row is stale: no score,
    its row's time and age, its client's watermark, in the results and the exports."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from parity.features.freshness import WATERMARKS_FILE, max_feature_age

    settings = private_copy(drift_data, tmp_path, copies=("published",))
    watermark = pd.Timestamp("2026-05-20", tz="UTC")
    pq.write_table(pa.table({"client_id": ["bolt"], "watermark_at": pa.array([watermark], pa.timestamp("us", tz="UTC"))}),
                   settings.marts_dir / WATERMARKS_FILE)
    limit = max_feature_age()
    as_of = materialized_until(settings) + limit + timedelta(days=1)
    run = run_score(settings, load_config(), as_of=as_of)
    results = run.results
    stale = results[results["status"] == "stale_features"]
    assert set(results["status"]) <= {"stale_features", "no_features"} and len(stale) > 0.9 * len(results)
    assert stale["score"].isna().all() and stale["decision"].isna().all() and stale["is_active"].isna().all()
    assert stale["reason_1"].isna().all() and stale["segment_id"].isna().all()
    assert (stale["feature_age_days"] > limit.days + 1 - 1e-9).all()
    newest = duckdb.connect().execute(
        f"select customer_id, max(snapshot_at) from read_parquet('{settings.marts_dir}/customer_features_weekly.parquet') "
        "group by 1").df().set_index("customer_id").iloc[:, 0]
    expected = pd.to_datetime(newest.reindex(stale["customer_id"]).to_numpy(), utc=True)
    assert (pd.DatetimeIndex(stale["features_at"]) == expected).all()
    bolt = stale["client_id"] == "bolt"
    assert (stale.loc[bolt, "watermark_at"] == watermark).all() and stale.loc[~bolt, "watermark_at"].isna().all()
    assert stale["status_detail"].str.startswith("not scored").all()
    assert any("stale_features" in m for m in run.messages)
    csv = pd.read_csv(next(p for p in run.exports["bolt"] if p.suffix == ".csv"))
    shown = csv[csv["status"] == "stale_features"]
    assert len(shown) and shown["score"].isna().all() and shown["reason_1"].isna().all()
    assert shown["status_detail"].str.contains("2026-05-20").all() and shown["features_at"].notna().all()
    assert not csv["reason_1"].fillna("").str.contains("no purchase").any()


def test_cli_scores_and_refuses_without_a_model(drift_data, tmp_path, capsys):
    from batch.__main__ import main

    settings = private_copy(drift_data, tmp_path / "ok")
    assert main(["score", "--data-dir", str(settings.data_dir), "--as-of", "2026-05-01T00:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert "rows out" in out and (settings.data_dir / "scores" / "scores_20260501T000000Z.parquet").exists()
    empty = tmp_path / "no_model"
    empty.mkdir()
    assert main(["score", "--data-dir", str(empty)]) == 2
    assert "no current 'churn' model" in capsys.readouterr().err


def _dbt_scores(settings) -> int:
    from tests.conftest import build

    build(settings, select="path:models/scores")  # `make score`'s partial build, on a copy
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute("select count(*) from scores.customer_scores").fetchone()[0]


def test_dbt_models_over_the_scores_build_with_and_without_files(drift_data, scored, tmp_path):
    _, run = scored
    # a private data folder: the partial build copies the shared published build and publishes
    # the copy by replacing the private `published` link
    without = private_copy(drift_data, tmp_path / "without")
    assert _dbt_scores(without) == 0
    (without.data_dir / "scores").mkdir()
    (without.data_dir / "scores" / run.results_path.name).symlink_to(run.results_path)
    assert _dbt_scores(without) == len(run.results)
    with duckdb.connect(str(without.warehouse_path), read_only=True) as con:
        row = con.execute(
            "select count(*) filter (where is_latest), count(*) filter (where churn_score is null), "
            "count(distinct segment_id) from scores.customer_scores"
        ).fetchone()
    unscored = int(run.results["score"].isna().sum())  # stale or without features: no score
    assert row[0] == len(run.results) and row[1] == unscored and row[2] >= 2
