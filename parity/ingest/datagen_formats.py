"""Raw-file formatting of the synthetic drops: each client's own column names, date, number and
id formats and injected text defects (used by parity.ingest.datagen, which simulates the behaviour).
"""

from __future__ import annotations

import csv
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

CATEGORIES = np.array(["groceries", "electronics", "fashion", "home", "beauty", "sports",
                       "books", "toys"])
_ASCII = str.maketrans({"ü": "ue", "ö": "oe", "ä": "ae", "ß": "ss", "é": "e", "à": "a",
                        "á": "a", "í": "i", "'": "", " ": ""})

CORA_CCY = {"IE": "EUR", "FR": "EUR", "DE": "EUR", "US": "USD"}
FX = {"GBP": 1.0, "EUR": 1.17, "USD": 1.27}
BOLT_SUFFIX = np.array(["Z", "+00:00", "-05:00", "-08:00"])
BOLT_OFFSET_H = np.array([0, 0, -5, -8])

def _s(x: Any) -> pd.Series:
    """Wrap an array as an object/str Series for vectorised string concatenation."""
    return pd.Series(np.asarray(x)).astype(str)


def _ts(sec: np.ndarray, fmt: str, berlin: bool = False) -> pd.Series:
    """Format epoch seconds (UTC) with strftime ``fmt``; optionally as Europe/Berlin local."""
    sec = np.asarray(sec, dtype=np.int64)
    if berlin:
        arr = (pd.to_datetime(sec, unit="s", utc=True).tz_convert("Europe/Berlin")
               .tz_localize(None).values.astype("datetime64[s]"))
    else:
        arr = sec.astype("datetime64[s]")
    return pd.Series(pc.strftime(pa.array(arr), format=fmt).to_numpy(zero_copy_only=False))


def _money(x: np.ndarray, sep: str) -> pd.Series:
    """Format amounts as ``-1234<sep>56`` without thousands separators."""
    cents = np.round(np.abs(x) * 100).astype(np.int64)
    return (_s(np.where(x < 0, "-", "")) + _s(cents // 100) + sep
            + _s(cents % 100).str.zfill(2))


def _ids(prefix: str, nums: np.ndarray, width: int) -> np.ndarray:
    """Build ids like ``AC-000123`` (object array)."""
    return (prefix + _s(nums).str.zfill(width)).to_numpy(dtype=object)


def _messy(rng: np.random.Generator, s: pd.Series) -> pd.Series:
    """Randomly re-case and pad strings with spaces (cora's hand-typed ids and emails)."""
    mode = rng.integers(0, 3, len(s))
    out = s.where(mode != 0, s.str.lower()).where(mode != 1, s.str.upper())
    pad = np.array(["", "", " ", "  "])
    return _s(pad[rng.integers(0, 4, len(s))]) + out + _s(pad[rng.integers(0, 4, len(s))])

def _fmt_customers(client: str, rng: np.random.Generator, c: pd.DataFrame) -> pd.DataFrame:
    """Render canonical customer rows in the client's export format."""
    by = c["birth"].astype("Int64")
    if client == "acme":
        return pd.DataFrame({
            "kundennummer": c["cid"], "name": c["name"], "email": c["email"], "land": c["country"],
            "geburtsjahr": by, "kanal": c["channel"],
            "anmeldedatum": _ts(c["signup_s"], "%d/%m/%Y", berlin=True),
            "exportiert_am": _ts(c["arr_s"], "%d/%m/%Y %H:%M:%S", berlin=True)})
    if client == "bolt":
        code = rng.choice(4, len(c), p=[.3, .2, .3, .2])
        return pd.DataFrame({
            "id": c["cid"], "email": c["email"], "name": c["name"], "country": c["country"],
            "birth_year": by, "channel": c["channel"],
            "signed_up_at": _ts(c["signup_s"] + BOLT_OFFSET_H[code] * 3600, "%Y-%m-%dT%H:%M:%S")
            + BOLT_SUFFIX[code],
            "received_at": _ts(c["arr_s"], "%Y-%m-%dT%H:%M:%S+00:00")})
    return pd.DataFrame({
        "Client ID": _messy(rng, c["cid"]), "E-Mail": _messy(rng, c["email"]),
        "Full Name": c["name"], "Country Code": c["country"], "Year of Birth": by,
        "Source": c["channel"], "Registered": _ts(c["signup_s"], "%Y-%m-%d"),
        "Ingested At": _ts(c["arr_s"], "%Y-%m-%d %H:%M:%S")})


def _fmt_transactions(client: str, rng: np.random.Generator, tx: pd.DataFrame) -> pd.DataFrame:
    """Render canonical transaction rows; a row with ``src >= 0`` re-renders row ``src``."""
    src, ref, amt = tx["src"].to_numpy(), tx["ref"].to_numpy(), tx["amt"].to_numpy()
    v, cid = src >= 0, tx["cid"].reset_index(drop=True)
    if client == "acme":
        alt = pd.Series(np.where(rng.random(len(tx)) < .5, " ", "  ")) + cid.str.lower() + " "
        out = pd.DataFrame({
            "buchungsnr": tx["tid"].to_numpy(), "kundennummer": cid.where(~v, alt),
            "datum": _ts(tx["ev_s"], "%d/%m/%Y %H:%M", berlin=True),
            "betrag": _money(np.where(ref, -amt, amt), ","), "waehrung": tx["cur"].to_numpy(),
            "kategorie": CATEGORIES[tx["cat"]], "art": np.where(ref, "R", "K"),
            "exportiert_am": _ts(tx["arr_s"], "%d/%m/%Y %H:%M:%S", berlin=True)})
        dcol = "datum"
    elif client == "bolt":
        code = rng.choice(4, len(tx), p=[.3, .2, .3, .2])
        code[v] = (code[src[v]] + rng.integers(1, 4, int(v.sum()))) % 4
        out = pd.DataFrame({
            "txn_id": tx["tid"].to_numpy(), "customer": cid,
            "ts": _ts(tx["ev_s"].to_numpy() + BOLT_OFFSET_H[code] * 3600, "%Y-%m-%dT%H:%M:%S")
            + BOLT_SUFFIX[code],
            "amount_cents": np.round(amt * 100).astype(np.int64), "currency": tx["cur"].to_numpy(),
            "category": CATEGORIES[tx["cat"]], "kind": np.where(ref, "refund", "purchase"),
            "received_at": _ts(tx["arr_s"], "%Y-%m-%dT%H:%M:%S+00:00")})
        dcol = "ts"
    else:
        messy = _messy(rng, cid)
        orig = messy.iloc[np.where(v, src, 0)].reset_index(drop=True)
        alt = " " + orig.str.strip().str.swapcase() + "  "
        out = pd.DataFrame({
            "Order Ref": tx["tid"].to_numpy(), "Client ID": messy.where(~v, alt),
            "Order Date": _ts(tx["ev_s"], "%Y-%m-%d %H:%M:%S"), "Total": _money(amt, "."),
            "Currency": tx["cur"].to_numpy(), "Product Line": CATEGORIES[tx["cat"]],
            "Status": np.where(ref, "refunded", "completed"),
            "Ingested At": _ts(tx["arr_s"], "%Y-%m-%d %H:%M:%S")})
        dcol = "Order Date"
    bad = tx["bad_date"].to_numpy()
    out[dcol] = np.where(pd.notna(bad), bad, out[dcol].to_numpy())
    return out

def _write(client: str, df: pd.DataFrame, fh: Any, header: bool) -> None:
    """Append a formatted chunk to an open file in the client's format."""
    if client == "bolt":
        s = df.to_json(orient="records", lines=True, force_ascii=False)
        fh.write(s if s.endswith("\n") else s + "\n")
    else:
        df.to_csv(fh, sep=";" if client == "acme" else ",", header=header, index=False,
                  quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
