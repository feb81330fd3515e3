#!/usr/bin/env python3
"""A seeded SQLite database of about 75 MB for bench/run_sqlite_remote.sh (issue 17, item 3).

Table t(id INTEGER PRIMARY KEY, k INTEGER, x INTEGER, pad TEXT) with ROWS rows inserted in id
order, k drawn uniformly from [0, ROWS) and an index t_k on k built after the inserts: a query
`SELECT count(*), sum(x) FROM t WHERE k BETWEEN a AND a + WIDTH - 1` reads one or two leaf pages
of the index and then about WIDTH rows scattered over the whole table (one 4 KiB page each) —
the small random reads of a database looked up through an index. 4 KiB pages, journal_mode=DELETE
(the rollback journal: the file is the database, as a reader through a mount sees it).

Deterministic: the same seed gives the same rows (the file's bytes also depend on the SQLite
version). Python's standard library only.

usage: make_sqlite_db.py PATH                   create PATH (replaced if it exists)
       make_sqlite_db.py --query RUN            print the query of run RUN (seeded range)
       make_sqlite_db.py --expect RUN           print its answer, computed from the seed alone
"""
import os
import random
import sqlite3
import sys

SEED = 17
ROWS = 312_000
PAD_BYTES = 100  # 200 hex characters per row
WIDTH = 300      # rows a query touches, on average


def rows():
    rng = random.Random(SEED)
    for i in range(ROWS):
        yield (i + 1, rng.randrange(ROWS), rng.randrange(1_000_000), rng.randbytes(PAD_BYTES).hex())


def query_range(run):
    a = random.Random(f"query-{run}").randrange(ROWS - WIDTH)
    return a, a + WIDTH - 1


def query(run):
    a, b = query_range(run)
    return f"SELECT count(*), sum(x) FROM t WHERE k BETWEEN {a} AND {b};"


def expect(run):
    a, b = query_range(run)
    n = s = 0
    for _, k, x, _ in rows():
        if a <= k <= b:
            n += 1
            s += x
    return f"{n}|{s}"


def create(path):
    tmp = path + ".tmp"
    for p in (tmp, tmp + "-journal"):
        if os.path.exists(p):
            os.remove(p)
    db = sqlite3.connect(tmp)
    db.execute("PRAGMA page_size = 4096")
    db.execute("PRAGMA journal_mode = DELETE")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, x INTEGER NOT NULL, pad TEXT NOT NULL)")
    with db:
        db.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows())
    with db:
        db.execute("CREATE INDEX t_k ON t (k)")
    mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "delete":
        sys.exit(f"journal_mode is {mode}, not delete")
    db.close()
    os.replace(tmp, path)


def main(argv):
    if len(argv) == 3 and argv[1] == "--query":
        print(query(int(argv[2])))
    elif len(argv) == 3 and argv[1] == "--expect":
        print(expect(int(argv[2])))
    elif len(argv) == 2 and not argv[1].startswith("-"):
        create(argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
