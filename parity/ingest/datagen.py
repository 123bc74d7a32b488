"""Synthetic raw data for four fictional clients (acme, bolt, cora, and dune in datagen_dune).

Each client exports customers and transactions in its own file format (the formats are a
contract with the dbt staging models); dune sends only a fixed-width purchase log, monthly. Behaviour carries a learnable churn signal: customers
disengage (fewer, smaller purchases, more refunds) in the weeks before they churn. Realistic
defects (duplicates, bad ids, bad dates, late rows, corrections, orphans, ...) are injected and
counted in ``<client>/_manifest.json``. Generation is vectorised and chunked by customer, and is
deterministic for a given seed, scale, weeks and end date.

    python -m parity.ingest.datagen --out data/raw --scale 1
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from contextlib import ExitStack
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from parity.ingest.datagen_formats import (
    _ASCII,
    CATEGORIES,
    CORA_CCY,
    FX,
    _fmt_customers,
    _fmt_transactions,
    _ids,
    _s,
    _write,
)

DAY = 86_400
CHUNK = 10_000  # customers per chunk (bounds memory)
CUSTOMERS_PER_SCALE = 800
CHANNELS = np.array(["organic", "paid_search", "social", "referral", "affiliate"])
CHANNEL_P = [0.35, 0.25, 0.17, 0.13, 0.10]
CHANNEL_HAZARD = np.array([0.8, 1.1, 1.6, 0.5, 2.0])  # churn hazard multipliers
BASE_HAZARD = 0.014  # churn hazard per week
_HW = np.array([.3, .2, .1, .1, .1, .2, .5, 1, 1.5, 2, 2.5, 3, 3.5, 3, 2.5, 2.5, 2.7, 3, 3.5,
                4, 4, 3.5, 2, 1])
HOUR_P = _HW / _HW.sum()  # local hour-of-day profile
# Per-transaction rates of each defect class (at least 3 of each per client regardless).
TX_RATES = {"null_customer_id": .004, "malformed_customer_id": .004, "unparseable_date": .004,
            "future_date": .004, "negative_amount": .004, "absurd_amount": .003,
            "unknown_currency": .004, "late_correction": .005, "exact_duplicate": .006,
            "near_duplicate": .005}

CLIENTS: dict[str, dict[str, Any]] = {
    "acme": {"files": ("customers.csv", "transactions.csv"), "cid": ("AC-", 6),
             "tid": ("AT-", 7), "test": "TEST-", "shift": 1.5,
             "countries": {"DE": .55, "AT": .15, "FR": .1, "NL": .1, "CH": .05, "BE": .05},
             "first": ["Jürgen", "Renée", "Jörg", "Anna", "Lukas", "Sophie", "André", "Hélène",
                       "Max", "Léa", "Günther", "Marie", "Jonas", "Nicolà", "Emma", "Felix"],
             "last": ["Müller", "Schröder", "Weiß", "Groß", "Köhler", "Dupont", "Schmidt",
                      "Meyer", "Fischer", "Wagner", "Strauß", "Bécaud", "Voß", "Dürr",
                      "Möller", "Lambert", "de Vries", "Hoffmann"],
             "domains": ["web.de", "gmx.de", "gmail.com", "t-online.de", "orange.fr"],
             "bad_dates": ["31/02/2024", "2024-13-01", "gestern"]},
    "bolt": {"files": ("customers.jsonl", "transactions.jsonl"), "cid": ("b-", 5),
             "tid": ("bt-", 7), "test": "test-", "shift": -6.0,
             "countries": {"US": .8, "CA": .12, "MX": .05, "GB": .03},
             "first": ["James", "Maria", "José", "Emily", "Michael", "Aaliyah", "Chen", "Olivia",
                       "Noah", "Sofía", "Ethan", "Madison", "Liam", "Grace"],
             "last": ["Smith", "Johnson", "García", "Williams", "Brown", "Nguyen", "Martinez",
                      "Davis", "Lee", "O'Connor", "Miller", "Wilson", "Anderson", "Kim"],
             "domains": ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com"],
             "bad_dates": ["not a date", "2024-02-30T10:00:00Z"]},
    "cora": {"files": ("clients.csv", "orders.csv"), "cid": ("CR-", 5), "tid": ("OR-", 7),
             "test": "TEST-", "shift": 0.0,
             "countries": {"GB": .8, "IE": .08, "FR": .03, "DE": .03, "US": .06},
             "first": ["Oliver", "Amelia", "Seán", "Siobhán", "Harry", "Isla", "George", "Ava",
                       "Niamh", "Jack", "Freya", "Thomas", "Poppy", "Alfie"],
             "last": ["Smith", "Jones", "Taylor", "Brown", "Williams", "O'Brien", "Davies",
                      "Evans", "Murphy", "Wilson", "Roberts", "Walsh", "Hughes", "Clarke"],
             "domains": ["gmail.com", "hotmail.co.uk", "btinternet.com", "outlook.com",
                         "yahoo.co.uk"],
             "bad_dates": ["n/a", "32/01/2024"]},
}


def client_rng(seed: int, client: str) -> np.random.Generator:
    """Return the client's PCG64 generator, seeded from a stable (sha256) hash of seed+name."""
    digest = hashlib.sha256(f"parity-datagen/{seed}/{client}".encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:8], "little")))


def _simulate(rng: np.random.Generator, cfg: dict, n: int, weeks: int, end_year: int,
              drift: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Simulate n customers and their purchase events; times are float days since period start."""
    E = 7.0 * weeks
    cc = list(cfg["countries"])
    p = np.array([cfg["countries"][k] for k in cc])
    cust = {"country": np.array(cc)[rng.choice(len(cc), n, p=p / p.sum())],
            "birth": np.clip(np.round(rng.normal(1984, 14, n)), 1940, 2006).astype(np.int64),
            "chan": rng.choice(len(CHANNELS), n, p=CHANNEL_P),
            "signup": E * rng.random(n) ** 1.3}  # skewed towards early signups
    age = end_year - cust["birth"]
    hz = (BASE_HAZARD * CHANNEL_HAZARD[cust["chan"]] * rng.lognormal(0, .3, n)
          * np.where(age < 28, 1.3, np.where(age > 60, 0.8, 1.0)))
    cust["churn"] = cust["signup"] + 7 * rng.exponential(1 / hz)  # often > E: never churns
    rate = rng.gamma(2.0, 0.4, n)  # purchases/week, mean 0.8
    dis = rng.uniform(6, 10, n)  # disengagement window (weeks)
    basket = rng.lognormal(0, .3, n)
    favs, nfav = rng.integers(0, len(CATEGORIES), (n, 3)), rng.integers(1, 4, n)

    ws = 7.0 * np.arange(weeks)
    lo = np.maximum(cust["signup"][:, None], ws)
    hi = np.minimum(np.minimum(cust["churn"], E)[:, None], ws + 7)
    eng = 0.08 + 0.92 * np.clip((cust["churn"][:, None] - ws - 3.5) / 7 / dis[:, None], 0, 1)
    lam = rate[:, None] * (np.clip(hi - lo, 0, 7) / 7) * eng * rng.gamma(4.0, 0.25, (n, weeks))
    if drift:
        lam[:, -8:] *= 0.5
    ci, wi = np.divmod(np.repeat(np.arange(n * weeks), rng.poisson(lam).ravel()), weeks)
    a, b, e = lo[ci, wi], hi[ci, wi], eng[ci, wi]
    stray = np.flatnonzero((cust["churn"] < E) & (rng.random(n) < 0.02))  # rare post-churn buy
    ci = np.r_[ci, stray]
    a, b = np.r_[a, cust["churn"][stray]], np.r_[b, np.full(len(stray), E)]
    e = np.r_[e, np.full(len(stray), 0.08)]
    m = len(ci)
    t = a + rng.random(m) * (b - a)
    t = np.floor(t) + (rng.choice(24, m, p=HOUR_P) + rng.random(m) - cfg["shift"]) / 24
    t = np.minimum(np.maximum(t, a), b - 1e-5)
    d = drift & (t >= E - 56)
    amt = (rng.lognormal(np.log(40) - .18, .6, m) * basket[ci] * (0.55 + 0.45 * e)
           * np.where(d, 1.6, 1.0))
    k = (rng.random(m) * nfav[ci]).astype(np.int64)
    cat = np.where(rng.random(m) < 0.7, favs[ci, k], rng.integers(0, len(CATEGORIES), m))
    cat = np.where(d & (rng.random(m) < 0.5), 1, cat)  # drift: electronics-heavy mix
    ref = rng.random(m) < 0.03 + 0.12 * (1 - e)
    o = np.lexsort((t, ci))
    ci, t, amt, cat, ref = ci[o], t[o], amt[o], cat[o], ref[o]
    prev = np.r_[False, ci[1:] == ci[:-1]]  # refund the previous purchase's amount
    amt = np.round(np.where(ref & prev, np.r_[amt[:1], amt[:-1]], amt), 2)
    return cust, {"ci": ci, "t": t, "amt": amt, "cat": cat, "ref": ref}


def _arrival(rng: np.random.Generator, sec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ingestion time: 2-30h batch delay, ~2% late by 1-6 weeks. Returns (arrival, late)."""
    late = rng.random(len(sec)) < 0.02
    delay = rng.uniform(2, 30, len(sec)) * 3600 + late * rng.uniform(7, 42, len(sec)) * DAY
    return sec + delay.astype(np.int64), late


def _chunk(client: str, cfg: dict, rng: np.random.Generator, nums: np.ndarray, first: bool,
           tid0: int, weeks: int, end_s: int, drift: bool, defects: bool
           ) -> tuple[pd.DataFrame, pd.DataFrame, int, dict[str, int]]:
    """Generate, corrupt and format one chunk of customers.

    Returns (customers, transactions, number of transaction ids used, defect counts). Over 80
    lines on purpose: every defect draws from the one client stream in a fixed order, so the drops
    stay byte-identical per seed; the formatting itself lives in datagen_formats."""
    n, start_s = len(nums), end_s - weeks * 7 * DAY
    end_year = datetime.fromtimestamp(end_s, timezone.utc).year
    cust, ev = _simulate(rng, cfg, n, weeks, end_year, drift)
    cnt: dict[str, int] = {}
    at_least = (lambda k, rate, pop: max(k if first else 0, int(rng.binomial(pop, rate)))) \
        if defects else (lambda k, rate, pop: 0)

    # --- customers (canonical) ---
    fi, li = rng.integers(0, len(cfg["first"]), n), rng.integers(0, len(cfg["last"]), n)
    first_n, last_n = np.array(cfg["first"]), np.array(cfg["last"])
    asc = np.vectorize(lambda x: x.lower().translate(_ASCII))
    local = _s(asc(first_n)[fi]) + "." + _s(asc(last_n)[li]) + _s(rng.integers(1, 100, n))
    domain = np.array(cfg["domains"])[rng.integers(0, len(cfg["domains"]), n)]
    cid = _ids(cfg["cid"][0], nums, cfg["cid"][1])
    signup_s = start_s + (cust["signup"] * DAY).astype(np.int64)
    c = pd.DataFrame({"cid": cid, "name": _s(first_n[fi]) + " " + _s(last_n[li]),
                      "email": local + "@" + _s(domain), "country": cust["country"],
                      "birth": cust["birth"].astype(float), "channel": CHANNELS[cust["chan"]],
                      "signup_s": signup_s,
                      "arr_s": np.minimum(_arrival(rng, signup_s)[0], end_s)})
    c.loc[rng.random(n) < 0.02, "birth"] = np.nan
    cnt["missing_birth_year"] = int(c["birth"].isna().sum())

    # --- transactions (canonical) ---
    ev_s = start_s + (ev["t"] * DAY).astype(np.int64)
    arr_s, late = _arrival(rng, ev_s)
    keep = arr_s <= end_s  # not yet ingested at export time
    ci = ev["ci"][keep]
    cur = np.full(len(ci), "EUR" if client == "acme" else "USD", dtype=object)
    amt = ev["amt"][keep]
    if client == "cora":
        cur = np.array([CORA_CCY.get(x, "GBP") for x in cust["country"]], dtype=object)[ci]
        amt = np.round(amt * pd.Series(cur).map(FX).to_numpy(), 2)
    o = np.argsort(ev_s[keep], kind="stable")
    tx = pd.DataFrame({"ci": ci, "ev_s": ev_s[keep], "arr_s": arr_s[keep], "amt": amt,
                       "ref": ev["ref"][keep], "cat": ev["cat"][keep], "cur": cur}).iloc[o]
    tx = tx.reset_index(drop=True)
    tx["tid"] = _ids(cfg["tid"][0], tid0 + 1 + np.arange(len(tx)), cfg["tid"][1])
    tx["bad_date"], tx["src"] = None, -1
    cnt["refunds"] = int(tx["ref"].sum())
    cnt["late_arriving"] = int(late[keep].sum())

    # --- test accounts and orphans: picked among customers that have transactions ---
    cand = rng.permutation(np.flatnonzero(np.bincount(tx["ci"], minlength=n) > 0))
    n_test, n_orph = at_least(3, .005, n), at_least(3, .01, n)
    test, orph = cand[:n_test], cand[n_test:n_test + n_orph]
    c.loc[test, "cid"] = cfg["test"] + c.loc[test, "cid"]
    c.loc[test, "email"] = c.loc[test, "email"].str.split("@").str[0] + "@example.com"
    tx["cid"] = c["cid"].to_numpy()[tx["ci"]]
    special = tx["ci"].isin(np.r_[test, orph]).to_numpy()
    cnt.update(test_accounts=len(test), test_transactions=int(tx["ci"].isin(test).sum()),
               orphan_customers=len(orph), orphan_transactions=int(tx["ci"].isin(orph).sum()))

    # --- transaction defects, each on a disjoint random set of ordinary rows ---
    perm = rng.permutation(np.flatnonzero(~special))
    k = {name: at_least(3, rate, len(perm)) for name, rate in TX_RATES.items()}
    corr = perm[tx["arr_s"].to_numpy()[perm] <= end_s - 3 * DAY][:k["late_correction"]]
    perm, pick, pos = perm[~np.isin(perm, corr)], {"late_correction": corr}, 0
    for name in TX_RATES:
        if name != "late_correction":
            pick[name], pos = perm[pos:pos + k[name]], pos + k[name]
    cnt.update({name: len(rows) for name, rows in pick.items()})
    P = {name: tx.index[rows] for name, rows in pick.items()}
    tx.loc[P["null_customer_id"], "cid"] = rng.choice(np.array([None, ""], dtype=object),
                                                       len(P["null_customer_id"]))
    tx.loc[P["malformed_customer_id"], "cid"] = rng.choice(
        ["???", "N/A", "12#4"], len(P["malformed_customer_id"]))
    tx.loc[P["unparseable_date"], "bad_date"] = rng.choice(cfg["bad_dates"],
                                                           len(P["unparseable_date"]))
    nf, y2099 = len(P["future_date"]), 4_070_908_800  # 2099-01-01 UTC
    tx.loc[P["future_date"], "ev_s"] = np.where(  # 1-5 years after end_date, or in 2099
        rng.random(nf) < .25, y2099 + tx.loc[P["future_date"], "arr_s"] % (364 * DAY),
        end_s + (rng.uniform(365, 1825, nf) * DAY).astype(np.int64))
    tx.loc[P["negative_amount"], "ref"] = False
    tx.loc[P["negative_amount"], "amt"] = -tx.loc[P["negative_amount"], "amt"].abs() - 0.01
    tx.loc[P["absurd_amount"], "amt"] = np.round(rng.uniform(1e6, 5e7, len(P["absurd_amount"])), 2)
    tx.loc[P["unknown_currency"], "cur"] = rng.choice(["XYZ", "BTC", "???"],
                                                      len(P["unknown_currency"]))
    fix = tx.loc[P["late_correction"]].copy()
    room = np.minimum(20.0, (end_s - fix["arr_s"].to_numpy()) / DAY)
    fix["arr_s"] += ((3 + rng.random(len(fix)) * (room - 3)) * DAY).astype(np.int64)
    fix["amt"] = np.round(fix["amt"] * rng.uniform(0.5, 0.9, len(fix)), 2)
    near = tx.loc[P["near_duplicate"]].copy()
    near["src"] = pick["near_duplicate"]
    tx = pd.concat([tx, fix, near], ignore_index=True)
    ftx = _fmt_transactions(client, rng, tx)  # exact duplicates repeat the rendered line
    ftx = pd.concat([ftx, ftx.iloc[pick["exact_duplicate"]]], ignore_index=True)
    arr = np.r_[tx["arr_s"].to_numpy(), tx["arr_s"].to_numpy()[pick["exact_duplicate"]]]
    ftx = ftx.iloc[np.argsort(arr + rng.integers(0, 6 * 3600, len(arr)), kind="stable")]

    # --- customer defects: orphans dropped, exact duplicates, bad-id junk rows ---
    c = c.drop(index=orph)
    nb = at_least(2, .002, n)
    junk = c.iloc[rng.integers(0, len(c), nb)].copy()
    junk["cid"] = rng.choice(np.array([None, "", "???", "N/A"], dtype=object), nb)
    c = pd.concat([c, junk], ignore_index=True)
    dup = rng.integers(0, len(c) - nb, at_least(2, .005, n))
    cnt.update(customer_bad_id=nb, customer_exact_duplicate=len(dup))
    fc = _fmt_customers(client, rng, c)
    fc = pd.concat([fc, fc.iloc[dup]], ignore_index=True)
    key = np.r_[c["arr_s"].to_numpy(), c["arr_s"].to_numpy()[dup]]
    fc = fc.iloc[np.argsort(key + rng.integers(0, 6 * 3600, len(key)), kind="stable")]
    return fc, ftx, len(tx) - len(fix) - len(near), cnt


ALL_CLIENTS = (*CLIENTS, "dune")


def _generate_dune(out_dir: Path, seed: int, n_total: int, weeks: int, end_date: date,
                   end_s: int, drift: bool, defects: bool, bar: tqdm) -> dict[str, int]:
    """Write dune's fixed-width purchase log (a quarter of another client's customers)."""
    from parity.ingest import datagen_dune

    rng, cdir = client_rng(seed, "dune"), Path(out_dir) / "dune"
    cdir.mkdir(parents=True, exist_ok=True)
    path, rows, counts = cdir / "purchases.txt", 0, {}
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for i, s0 in enumerate(range(0, n_total, CHUNK)):
            bar.set_postfix_str("dune")
            nums = np.arange(s0, min(s0 + CHUNK, n_total)) + 1
            lines, cnt = datagen_dune.chunk(rng, nums, i == 0, weeks, end_s, drift, defects)
            fh.write("".join(line + "\n" for line in lines))
            rows += len(lines)
            for k, v in cnt.items():
                counts[k] = counts.get(k, 0) + int(v)
            bar.update(1)
    manifest = {"client": "dune", "seed": seed, "customers_simulated": n_total,
                "end_date": end_date.isoformat(),
                "weeks": weeks, "drift": drift, "files": {path.name: rows},
                **datagen_dune.manifest_extra(end_s), "defects": counts}
    (cdir / "_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {path.name: rows}


def generate(out_dir: Path, seed: int = 42, scale: float = 1.0, end_date: date | None = None,
             weeks: int = 104, drift_client: str | None = None, defects: bool = True
             ) -> dict[str, dict[str, int]]:
    """Write raw files for all clients under ``out_dir/<client>/``.

    ``scale`` 1 gives ~800 customers per client (dune a quarter of that); the period is
    ``weeks`` weeks ending at ``end_date`` 00:00 UTC (default: today UTC), dune's ending ~5 weeks
    earlier. ``drift_client`` shifts that client's behaviour in the last 8 weeks. Returns
    ``{client: {filename: data_row_count}}``.
    """
    if drift_client is not None and drift_client not in ALL_CLIENTS:
        raise ValueError(f"unknown drift client {drift_client!r}; expected one of {list(ALL_CLIENTS)}")
    end_date = end_date or datetime.now(timezone.utc).date()
    end_s = int(datetime(end_date.year, end_date.month, end_date.day,
                         tzinfo=timezone.utc).timestamp())
    n_total = max(20, round(CUSTOMERS_PER_SCALE * scale))
    starts = list(range(0, n_total, CHUNK))
    n_dune = max(20, round(n_total / 4))
    result: dict[str, dict[str, int]] = {}
    with tqdm(total=len(CLIENTS) * len(starts) + len(range(0, n_dune, CHUNK)), desc="datagen",
              unit="chunk") as bar:
        for client, cfg in CLIENTS.items():
            rng, cdir = client_rng(seed, client), Path(out_dir) / client
            cdir.mkdir(parents=True, exist_ok=True)
            enc = "latin-1" if client == "acme" else "utf-8"
            paths = [cdir / f for f in cfg["files"]]
            rows, counts, tid = [0, 0], {}, 0
            with ExitStack() as stack:
                fhs = [stack.enter_context(open(p, "w", encoding=enc, newline=""))
                       for p in paths]
                for i, s0 in enumerate(starts):
                    bar.set_postfix_str(client)
                    nums = np.arange(s0, min(s0 + CHUNK, n_total)) + 1
                    fc, ftx, used, cnt = _chunk(client, cfg, rng, nums, i == 0, tid, weeks,
                                                end_s, drift_client == client, defects)
                    tid += used
                    for j, df in enumerate((fc, ftx)):
                        _write(client, df, fhs[j], header=i == 0)
                        rows[j] += len(df)
                    for kk, vv in cnt.items():
                        counts[kk] = counts.get(kk, 0) + int(vv)
                    bar.update(1)
            files = {p.name: r for p, r in zip(paths, rows)}
            result[client] = files
            manifest = {"client": client, "seed": seed, "scale": scale,
                        "end_date": end_date.isoformat(), "weeks": weeks,
                        "drift": drift_client == client, "files": files,
                        "tables": dict(zip(("customers", "transactions"), cfg["files"])),
                        "defects": counts}
            (cdir / "_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        result["dune"] = _generate_dune(out_dir, seed, n_dune, weeks, end_date, end_s,
                                        drift_client == "dune", defects, bar)
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; prints a per-file row-count summary."""
    ap = argparse.ArgumentParser(prog="python -m parity.ingest.datagen",
                                 description="Generate synthetic raw client data.")
    ap.add_argument("--out", type=Path, default=Path("data/raw"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--end-date", type=date.fromisoformat, default=None,
                    help="YYYY-MM-DD (default: today UTC)")
    ap.add_argument("--weeks", type=int, default=104)
    ap.add_argument("--drift-client", choices=list(ALL_CLIENTS), default=None)
    ap.add_argument("--no-defects", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    res = generate(a.out, seed=a.seed, scale=a.scale, end_date=a.end_date, weeks=a.weeks,
                   drift_client=a.drift_client, defects=not a.no_defects)
    for client, files in res.items():
        for name, n in files.items():
            print(f"{client:6s} {name:20s} {n:>12,d}")
    total = sum(n for f in res.values() for n in f.values())
    print(f"{'total':27s} {total:>12,d} rows in {time.perf_counter() - t0:.1f}s -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
