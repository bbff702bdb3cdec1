"""Count the SQL statements of a traced run (overlays/bench_statements.py) per task.

Each process wrote the start of its statements to a file of its own, in order. A
statement's kind is its verb and table ("INSERT django_q_ormq"); a write transaction
is a BEGIN, or a write statement outside one (SQLite's autocommit).
"""

import re
from collections import Counter

TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)
WRITES = {"INSERT", "UPDATE", "DELETE", "REPLACE"}
WRITE_TRANSACTIONS = "write transactions"


def kind(statement):
    verb = statement.split(None, 1)[0].upper()
    table = TABLE.search(statement)
    return f"{verb} {table.group(1)}" if table and verb != "PRAGMA" else verb


def count(directory, tasks):
    """{kind: statements per task}, plus WRITE_TRANSACTIONS, highest first."""
    counts = Counter()
    for path in directory.glob("*.sql"):
        in_transaction = False
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            statement_kind = kind(line)
            counts[statement_kind] += 1
            verb = statement_kind.split()[0]
            if verb == "BEGIN":
                in_transaction = True
                counts[WRITE_TRANSACTIONS] += 1
            elif verb in ("COMMIT", "ROLLBACK"):
                in_transaction = False
            elif verb in WRITES and not in_transaction:
                counts[WRITE_TRANSACTIONS] += 1
    return {name: round(n / tasks, 2) for name, n in counts.most_common()}
