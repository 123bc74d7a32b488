"""The fourth demo client, dune: a monthly deliverer whose purchase log ends weeks before the others'.

dune sends what a real public purchase log looks like: one fixed-width text file, no header, no
customer file, no transaction id, no arrival time, amounts with ',' thousands separators, some
zero amounts. Its purchases arrive with the monthly drop (the 25th, 23:00 UTC) after they happen,
and its last drop is the monthly drop nearest to five weeks before the others' end. Behaviour
comes from the same simulation as the other clients (`datagen._simulate`), so it carries the same
churn signal. The staging models (dbt_project/models/staging/dune/) are the contract.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

DAY = 86_400
DROP_DAY, DROP_HOUR = 25, 23  # the monthly drop: day of month and hour (UTC)
LAG_DAYS = 35  # the last drop is the monthly drop nearest to this many days before the end
CONFIG: dict[str, Any] = {"cid": ("DU-", 5), "test": "TEST-", "shift": 0.0,
                          "countries": {"CA": 1.0}, "currency": "CAD"}
# Per-line rates of each defect class (at least 3 of each regardless, like the other clients).
RATES = {"null_customer_id": .004, "malformed_customer_id": .004, "unparseable_date": .004,
         "future_date": .004, "negative_amount": .004, "absurd_amount": .003,
         "ambiguous_amount": .004, "unparseable_amount": .003, "malformed_record": .003,
         "zero_amount": .006, "repeated_lines": .005}
BAD_DATES = ["31.02.2026 10:00", "gestern", "2026-13-01 10:00"]
WIDTHS = (14, 16, 14)  # customer, purchased_at (dd.mm.yyyy HH:MM), amount; then the category


def next_drop(sec: np.ndarray) -> np.ndarray:
    """Epoch seconds of the first monthly drop strictly after each time (the staging rule)."""
    t = pd.to_datetime(np.asarray(sec, dtype=np.int64), unit="s", utc=True)
    month = t.tz_localize(None).to_period("M").to_timestamp()
    drop = month + pd.Timedelta(days=DROP_DAY - 1, hours=DROP_HOUR)
    drop = drop.where(drop > t.tz_localize(None), drop + pd.DateOffset(months=1))
    return (drop.values.astype("datetime64[s]").astype(np.int64))


def last_drop(end_s: int) -> int:
    """The monthly drop nearest to LAG_DAYS before the others' end (and not after it)."""
    target = end_s - LAG_DAYS * DAY
    after = int(next_drop(np.array([target - 1]))[0])
    before = int(next_drop(np.array([after - 40 * DAY]))[0])
    return after if after - target < target - before and after <= end_s else before


def _amount(x: np.ndarray) -> pd.Series:
    """Amounts like ``1,234.50`` (',' thousands, '.' decimals)."""
    return pd.Series([f"{v:,.2f}" for v in np.asarray(x, dtype=float)], dtype=object)


def _lines(cid: pd.Series, ev_s: np.ndarray, amount: pd.Series, cat: np.ndarray) -> pd.Series:
    """Render fixed-width lines: customer, dd.mm.yyyy HH:MM (UTC), amount (right), category."""
    from parity.ingest.datagen_formats import _ts

    w_c, w_t, w_a = WIDTHS
    ts = _ts(ev_s, "%d.%m.%Y %H:%M")
    return (cid.str.ljust(w_c) + ts.str.ljust(w_t) + " " + amount.str.rjust(w_a) + " "
            + pd.Series(cat, dtype=object))


def chunk(rng: np.random.Generator, nums: np.ndarray, first: bool, weeks: int, end_s: int,
          drift: bool, defects: bool) -> tuple[list[str], dict[str, int]]:
    """Simulate, corrupt and render one chunk of dune customers; returns (lines, defect counts)."""
    from parity.ingest.datagen import _simulate
    from parity.ingest.datagen_formats import CATEGORIES, _ids

    n, start_s = len(nums), end_s - weeks * 7 * DAY
    end_year = datetime.fromtimestamp(end_s, timezone.utc).year
    cust, ev = _simulate(rng, CONFIG, n, weeks, end_year, drift)
    ev_s = start_s + (ev["t"] * DAY).astype(np.int64)
    # a purchase log: refunds are not in it; a purchase is in it once its monthly drop has come
    keep = ~ev["ref"] & (next_drop(ev_s) <= last_drop(end_s))
    ci, ev_s = ev["ci"][keep], ev_s[keep]
    amt, cat = ev["amt"][keep], CATEGORIES[ev["cat"][keep]]
    o = np.argsort(ev_s, kind="stable")
    ci, ev_s, amt, cat = ci[o], ev_s[o], amt[o], cat[o]
    cid = pd.Series(_ids(CONFIG["cid"][0], nums, CONFIG["cid"][1])[ci], dtype=object)
    at_least = (lambda k, rate, pop: max(k if first else 0, int(rng.binomial(pop, rate)))) \
        if defects else (lambda k, rate, pop: 0)

    # test accounts: every purchase of a few customers
    buyers = rng.permutation(np.unique(ci))
    test = buyers[:at_least(3, .005, n)]
    is_test = np.isin(ci, test)
    cid[is_test] = CONFIG["test"] + cid[is_test]
    cnt = {"test_transactions": int(is_test.sum())}

    amount = _amount(amt)
    perm = rng.permutation(np.flatnonzero(~is_test))
    pick, pos = {}, 0
    for name, rate in RATES.items():
        k = at_least(3, rate, len(perm))
        pick[name], pos = perm[pos:pos + k], pos + k
        cnt[name] = len(pick[name])
    cid[pick["null_customer_id"]] = ""
    cid[pick["malformed_customer_id"]] = rng.choice(["???", "N/A", "12#4"], len(pick["malformed_customer_id"]))
    ev_s = ev_s.copy()
    ev_s[pick["future_date"]] = 4_070_908_800 + ev_s[pick["future_date"]] % (364 * DAY)  # 2099
    amount[pick["negative_amount"]] = "-" + amount[pick["negative_amount"]]
    amount[pick["absurd_amount"]] = _amount(rng.uniform(1e6, 5e7, len(pick["absurd_amount"])))
    # the same amounts written the other way round ("1.234,50") or with a two-digit group
    amb = pick["ambiguous_amount"]
    amount[amb] = np.where(rng.random(len(amb)) < .5,
                           amount[amb].str.replace(",", "_").str.replace(".", ",").str.replace("_", "."),
                           (amt[amb] // 1).astype(np.int64).astype(str) + "," + "5")
    amount[pick["unparseable_amount"]] = rng.choice(["n/a", "--", "twelve"], len(pick["unparseable_amount"]))
    amount[pick["zero_amount"]] = "0.00"
    lines = _lines(cid, ev_s, amount, cat)
    bad = pick["unparseable_date"]
    lines[bad] = (cid[bad].str.ljust(WIDTHS[0]) + pd.Series(rng.choice(BAD_DATES, len(bad)), index=bad)
                  .str.ljust(WIDTHS[1]) + " " + amount[bad].str.rjust(WIDTHS[2]) + " "
                  + pd.Series(cat[bad], index=bad))
    cut = pick["malformed_record"]
    lines[cut] = lines[cut].str[:WIDTHS[0] + 10]  # cut mid-write
    # genuine repeats: the same purchase line twice (two identical purchases, both kept)
    lines = pd.concat([lines, lines[pick["repeated_lines"]]], ignore_index=True)
    return lines.tolist(), cnt


def manifest_extra(end_s: int) -> dict[str, Any]:
    """What the manifest records about dune's shape and timeline."""
    drop = datetime.fromtimestamp(last_drop(end_s), timezone.utc)
    return {"tables": {"customers": None, "transactions": "purchases.txt"},
            "arrival": {"rule": "monthly", "day_of_month": DROP_DAY, "hour": DROP_HOUR},
            "last_drop_at": drop.isoformat(), "customers": "derived from transactions",
            "transaction_ids": "none (derived from the line)"}
