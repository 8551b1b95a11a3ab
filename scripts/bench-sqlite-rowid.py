#!/usr/bin/env python3
"""What reaching a delivery by its text id costs against reaching it by its rowid.

hookd's `delivery` table is a rowid table with a TEXT primary key, so SQLite keeps a separate
index on the id: a statement that names a delivery by id descends that index, then the table.
A claim walks the due index, whose entries carry the rowid, and then reads and leases each
picked delivery; a record reads each delivery's lease token and then updates it. This times
both shapes, alternated in rounds within one process so that a machine's changing speed
falls on both alike:

- by id: `SELECT … WHERE id = ?` then `UPDATE … WHERE id = ?` (what hookd did);
- by rowid: the same statements with `WHERE rowid = ?` (what a claim does now, with the rowid
  it read from the due index).

    python3 scripts/bench-sqlite-rowid.py

Uses Python's own sqlite3 module (its SQLite version is printed), on a temporary file, with
the delivery table's columns and indexes as hookd creates them.
"""
import os
import random
import sqlite3
import statistics
import tempfile
import time

ROWS, PER_ROUND, ROUNDS = 200_000, 2_000, 7

SCHEMA = """
CREATE TABLE delivery (
    id TEXT PRIMARY KEY, msg_id TEXT NOT NULL, endpoint_id TEXT NOT NULL, app_id TEXT NOT NULL,
    status INTEGER NOT NULL, scheduled_attempts INTEGER NOT NULL DEFAULT 0,
    total_attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER,
    next_trigger INTEGER NOT NULL DEFAULT 0, lease_until INTEGER NOT NULL DEFAULT 0,
    lease_token INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX delivery_msg_endpoint ON delivery (msg_id, endpoint_id);
CREATE INDEX delivery_endpoint_msg ON delivery (endpoint_id, msg_id);
CREATE INDEX delivery_due_claim ON delivery (next_attempt_at, lease_until, endpoint_id, app_id, id)
    WHERE next_attempt_at IS NOT NULL;
"""


def ksuid_like(prefix: str, i: int) -> str:
    return f"{prefix}{i:012d}{random.randbytes(8).hex()[:15]}"


def fill(c: sqlite3.Connection) -> list:
    c.executescript(SCHEMA)
    c.execute("BEGIN")
    rows = []
    for i in range(ROWS):
        rows.append((ksuid_like("msgep_", i), ksuid_like("msg_", i // 100), f"ep_{i % 100:027d}", "app_1", i))
    c.executemany(
        "INSERT INTO delivery (id, msg_id, endpoint_id, app_id, status, next_attempt_at, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, 1, ?, 0, 0)",
        rows,
    )
    c.execute("COMMIT")
    return [(r[0], rowid) for r, (rowid,) in zip(rows, c.execute("SELECT rowid FROM delivery ORDER BY rowid"))]


def round_of(c: sqlite3.Connection, picks: list, by_rowid: bool) -> float:
    key = "rowid" if by_rowid else "id"
    read = f"SELECT msg_id, scheduled_attempts, total_attempts, MIN(next_trigger, 1) FROM delivery WHERE {key} = ?"
    lease = (
        f"UPDATE delivery SET lease_until = ?, lease_token = ?, next_attempt_at = ?, "
        f"next_trigger = MIN(next_trigger, 1) WHERE {key} = ?"
    )
    c.execute("BEGIN IMMEDIATE")
    started = time.perf_counter()
    for n, (id_, rowid) in enumerate(picks):
        k = rowid if by_rowid else id_
        c.execute(read, (k,)).fetchone()
        c.execute(lease, (10**12 + n, n, 10**12 + n, k))
    spent = time.perf_counter() - started
    c.execute("ROLLBACK")
    return spent / len(picks) * 1e6


def main() -> None:
    random.seed(7)
    print(f"SQLite {sqlite3.sqlite_version}, {ROWS:,} deliveries; a read and a lease per picked delivery")
    with tempfile.TemporaryDirectory() as tmp:
        c = sqlite3.connect(os.path.join(tmp, "bench.db"), isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA temp_store=MEMORY")
        keys = fill(c)
        times = {False: [], True: []}
        for r in range(ROUNDS):
            # A claim takes the longest overdue: deliveries published one after another.
            start = r * PER_ROUND * 10
            picks = keys[start : start + PER_ROUND]
            # Alternate which goes first, so neither always meets a warmer cache.
            for by_rowid in (r % 2 == 0, r % 2 != 0):
                times[by_rowid].append(round_of(c, picks, by_rowid))
        for by_rowid, label in ((False, "by id"), (True, "by rowid")):
            t = times[by_rowid]
            print(f"{label:9} median {statistics.median(t):5.2f} µs per delivery (rounds: "
                  + ", ".join(f"{x:.2f}" for x in t) + ")")


if __name__ == "__main__":
    main()
