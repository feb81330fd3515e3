#!/usr/bin/env python3
"""Counters of an agent's own `agent_status` document, read from its store (read-only).

usage: status_counters.py DB NODE_ID SUBSYSTEM --after EPOCH [--timeout SECS] KEY...
Waits until the document was written after EPOCH (the agent rewrites it every
`sync.status_interval`), then prints the value of each KEY under subsystems.SUBSYSTEM.counters,
one per line (0 for a counter not reported yet). Exits 1 if no such document comes in time.
"""
import argparse
import datetime
import json
import sqlite3
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("node")
    ap.add_argument("subsystem")
    ap.add_argument("keys", nargs="+")
    ap.add_argument("--after", type=float, required=True)
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        try:
            db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True, timeout=10)
            row = db.execute("SELECT body FROM docs WHERE id = ?", (f"status::{a.node}",)).fetchone()
            db.close()
        except sqlite3.Error:
            row = None
        if row:
            doc = json.loads(row[0])
            at = datetime.datetime.fromisoformat(doc["updated_at"].replace("Z", "+00:00")).timestamp()
            if at > a.after:
                counters = doc.get("subsystems", {}).get(a.subsystem, {}).get("counters", {})
                for k in a.keys:
                    print(counters.get(k, 0))
                return 0
        time.sleep(0.2)
    print(f"no status of {a.node} written after {a.after} in {a.db}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
