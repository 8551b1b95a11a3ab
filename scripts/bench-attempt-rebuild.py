#!/usr/bin/env python3
"""Times SQLite migration 12 (the attempt table rebuilt without two indexes) on a large table.

    python3 scripts/bench-attempt-rebuild.py [ATTEMPTS]      # default 1,000,000

Applies migrations 1-11 to a fresh database in a temporary directory, stores ATTEMPTS attempts
shaped like the benchmark's (about the same headers), then times migration 12 and prints the
database's size before and after as one JSON line. Uses Python's own sqlite3 module, with
hookd's journal settings (WAL, synchronous=FULL).
"""
import glob
import json
import os
import sqlite3
import sys
import tempfile
import time

MIGRATIONS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "crates",
                                           "hookd-store-sqlite", "migrations", "*.sql")))
REQUEST_HEADERS = json.dumps({
    "content-type": "application/json",
    "user-agent": "hookd/0.1.0",
    "webhook-attempt": "1",
    "webhook-id": "msg_2kQ9vS3xYbLq1nM8pR4tUwZc7Ae",
    "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    "webhook-timestamp": "1764931200",
})
RESPONSE_HEADERS = json.dumps([["content-length", "0"], ["date", "Sat, 05 Dec 2026 12:00:00 GMT"]])


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory(prefix="hookd-rebuild-") as dir:
        path = os.path.join(dir, "hookd.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        for migration in MIGRATIONS[:11]:
            db.executescript(open(migration).read())
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO attempt (id, delivery_id, msg_id, endpoint_id, app_id, url, response, "
            "response_status_code, response_duration_ms, status, trigger_type, attempt_number, "
            "created_at, request_headers, response_headers) "
            "VALUES (?, ?, ?, ?, ?, ?, '', 200, 3, 0, 0, 1, ?, ?, ?)",
            ((f"atmpt_{i:027d}", f"dlv_{i:027d}", f"msg_{i // 2:027d}", f"ep_{i % 100:028d}",
              "app_0000000000000000000000001", "http://127.0.0.1:9/hook/1",
              1_764_931_200_000_000 + i, REQUEST_HEADERS, RESPONSE_HEADERS)
             for i in range(count)),
        )
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = os.path.getsize(path)
        started = time.monotonic()
        db.executescript("BEGIN;" + open(MIGRATIONS[11]).read() + "COMMIT;")
        took = time.monotonic() - started
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after = os.path.getsize(path)
        print(json.dumps({
            "attempts": count,
            "migration_s": round(took, 1),
            "database_mib_before": round(before / 2**20, 1),
            "database_mib_after": round(after / 2**20, 1),
        }))


if __name__ == "__main__":
    main()
