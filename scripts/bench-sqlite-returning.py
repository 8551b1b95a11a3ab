#!/usr/bin/env python3
"""What a statement with RETURNING costs inside a long SQLite transaction.

hookd's SQLite writer runs many writes in one transaction, each in a savepoint, with
temp_store=MEMORY. A statement with RETURNING (which SQLite runs as a trigger) keeps a
statement journal, and releasing it walks the in-memory sub-journal from the start, so its
cost grows with everything the transaction wrote before it. This prints the mean time of the
first and last 300 of 3,000 statements in one transaction, for an upsert with RETURNING and
for the same upsert followed by a read (what hookd does instead).

    python3 scripts/bench-sqlite-returning.py

Uses Python's own sqlite3 module (its SQLite version is printed), on a temporary file.
"""
import os
import sqlite3
import tempfile
import time

ROWS, STATEMENTS = 20_000, 3_000


def run(kind: str, path: str) -> None:
    if os.path.exists(path):
        os.remove(path)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA temp_store=MEMORY")
    c.execute("CREATE TABLE d (id TEXT PRIMARY KEY, m TEXT, e TEXT, n INT, pad TEXT)")
    c.execute("CREATE UNIQUE INDEX d_me ON d (m, e)")
    c.execute("BEGIN")
    c.executemany(
        "INSERT INTO d VALUES (?, ?, 'e', 0, ?)",
        [(f"id{i:08d}", f"m{i:08d}", "x" * 200) for i in range(ROWS)],
    )
    c.execute("COMMIT")
    c.execute("BEGIN IMMEDIATE")
    c.execute("SAVEPOINT batch")
    upsert = (
        "INSERT INTO d VALUES (?, ?, 'e', 0, ?) "
        "ON CONFLICT (m, e) DO UPDATE SET n = n + 1, pad = excluded.pad"
    )
    times = []
    for i in range(STATEMENTS):
        m = f"m{(i * 7919) % ROWS:08d}"
        started = time.perf_counter()
        if kind == "upsert … RETURNING":
            c.execute(upsert + " RETURNING id, n", (f"new{i}", m, "y" * 200)).fetchall()
        else:
            c.execute(upsert, (f"new{i}", m, "y" * 200))
            c.execute("SELECT id, n FROM d WHERE m = ? AND e = 'e'", (m,)).fetchall()
        times.append(time.perf_counter() - started)
    c.execute("RELEASE batch")
    c.execute("COMMIT")
    c.close()
    first = sum(times[:300]) / 300 * 1e6
    last = sum(times[-300:]) / 300 * 1e6
    print(f"{kind:22} first 300: {first:6.1f} µs   last 300: {last:6.1f} µs")


def main() -> None:
    print(f"SQLite {sqlite3.sqlite_version}, {STATEMENTS:,} statements in one transaction")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("upsert … RETURNING", "upsert, then a read"):
            run(kind, os.path.join(tmp, "bench.db"))


if __name__ == "__main__":
    main()
