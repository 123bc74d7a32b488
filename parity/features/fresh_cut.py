"""Which transaction ids a fresh-feature round's customers hold, found by an integer key.

A round (`parity.features.fresh.recompute`) first finds the (client, transaction id) pairs of its
customers' records in every staged transaction table, then every record holding those pairs.
The first step was a semi-join on the customer id string over every row of every table (the
warehouse is not ordered by customer, so nothing is skipped): the largest part of a round's CPU,
linear in the warehouse. The second step is cheap (transaction ids are mostly in order, so the
scan skips most of each table).

`StagedPairs` keeps, once per build, the staged tables' (customer number, client, transaction
id) in an in-memory DuckDB table ordered by number (~100 bytes of memory per record), built in a
background thread: rounds use the warehouse's tables until it is ready, so the first pushes never
wait for it, and it is skipped above `MAX_ROWS` records. A round then finds its pairs with a
semi-join on integers; the event log's pairs and every other step are the chain's own, unchanged
— the same compiled SQL on the same rows, the same answer (tested equal).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

import duckdb

from parity.ingest.fresh_plan import Statements

log = logging.getLogger("parity.features.fresh_cut")

DATABASE = "fresh_pairs"
NUMBER = "customer_no__"
NUMBERS = "fresh__numbers"  # temp table of the round's customer numbers, on the round's connection
MAX_ROWS = 5_000_000  # ~100 bytes of RSS a record (measured: ~33 MB at 331k records)


class StagedPairs:
    """One build's (customer number, client_id, transaction_id) of every staged record."""

    def __init__(self, con: duckdb.DuckDBPyConnection, staged: Mapping[str, str], max_rows: int = MAX_ROWS):
        self.staged = dict(staged)
        self.ready = threading.Event()
        self.problem: str | None = None
        self.numbers: dict[str, int] = {}
        self.cancelled = False  # set before the connection is closed on purpose
        # on the round's connection, before any statement is prepared on it (no DDL afterwards)
        con.execute(f"create temp table if not exists {NUMBERS} (n bigint)")
        self.rows = sum(con.execute(f"select count(*) from {r}").fetchone()[0] for r in self.staged.values())
        if self.rows > max_rows:
            self.problem = f"{self.rows:,} staged rows > {max_rows:,}: rounds read the warehouse's tables"
            log.info("fresh pairs skipped: %s", self.problem)
            return
        con.execute(f"attach if not exists ':memory:' as {DATABASE}")
        threading.Thread(target=self._build, args=(con.cursor(),), name="fresh-pairs", daemon=True).start()

    def _build(self, cursor: duckdb.DuckDBPyConnection) -> None:
        try:
            union = " union all ".join(f"select customer_id, client_id, transaction_id from {r}"
                                       for r in self.staged.values())
            cursor.execute(f"create or replace table {DATABASE}.records as select * from ({union}) "
                           "where customer_id is not null")
            cursor.execute(f"create or replace table {DATABASE}.customers as select customer_id, "
                           f"row_number() over (order by customer_id) as {NUMBER} "
                           f"from (select distinct customer_id from {DATABASE}.records)")
            cursor.execute(f"create or replace table {DATABASE}.pairs as select c.{NUMBER}, r.client_id, r.transaction_id "
                           f"from {DATABASE}.records r join {DATABASE}.customers c using (customer_id) order by 1")
            cursor.execute(f"drop table {DATABASE}.records")
            self.numbers = dict(cursor.execute(f"select customer_id, {NUMBER} from {DATABASE}.customers").fetchall())
            self.ready.set()
        except Exception as err:  # rounds keep reading the warehouse's tables
            self.problem = f"{type(err).__name__}: {err}"
            # closed on purpose (the process ends, or a newer build is published): nothing lost
            (log.debug if self.cancelled else log.warning)("fresh pairs not built: %s", self.problem)
        finally:
            cursor.close()

    def sql(self) -> str | None:
        """The pairs of the round's customers' warehouse records (None until built)."""
        if not self.ready.is_set():
            return None
        return f"select client_id, transaction_id from {DATABASE}.pairs where {NUMBER} in (select n from {NUMBERS})"

    def fill(self, con: duckdb.DuckDBPyConnection, customers: Sequence[str]) -> None:
        """The round's customer numbers (a customer without warehouse records has none)."""
        con.execute(f"delete from {NUMBERS}")
        con.execute(f"insert into {NUMBERS} select unnest(?::bigint[])",
                    [sorted({self.numbers[c] for c in customers if c in self.numbers})])

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the pairs are ready, waiting up to `timeout` seconds."""
        return self.problem is None and self.ready.wait(timeout)


def previous_owners(con: duckdb.DuckDBPyConnection, relations: Sequence[str], events: str, keys: str,
                    statements: Statements | None = None) -> list[str]:
    """The other customers named by any version of the round's customers' pushed transactions:
    a correction that moves an event id to another customer changes the previous owner's row
    too (the newest version wins, per id), so the round recomputes both. Only the log's records
    of the round's customers are looked up (few), by their (client, transaction id), in the log
    and in each staged table (ids are mostly in order: the scan skips most of each table);
    `statements`: the connection's prepared statements (planned once: ~2 ms a round saved)."""
    pushed = f"select client_id, transaction_id from {events} where customer_id in (select customer_id from {keys})"
    named = " union ".join(f"select customer_id from {relation} where (client_id, transaction_id) in (select * from moved)"
                           for relation in [events, *relations])
    sql = (f"with moved as ({pushed}) select distinct customer_id from ({named}) "
           f"where customer_id is not null and customer_id not in (select customer_id from {keys})")
    rows = (statements.run(con, sql, None) if statements is not None else con.execute(sql)).fetchall()
    return sorted(r[0] for r in rows)
