"""The one place that writes the SQL the suite sends through the database client (lifecycle/commands/dbclient.py):
quoting, row counts, the atomic table swap of a restore, and the scratch account a restore loads as.

Every builder returns text; nothing here runs anything. Names and strings are quoted here, never pasted.
"""

from __future__ import annotations

from collections.abc import Sequence

from lifecycle.commands import dbclient


def sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def count_rows_sql(database: str, tables: Sequence[str]) -> str:
    """One statement that counts every table's rows exactly (information_schema only estimates for InnoDB)."""
    db = sql_identifier(database)
    parts = [f"SELECT {sql_string(t)}, COUNT(*) FROM {db}.{sql_identifier(t)}" for t in tables]
    return " UNION ALL ".join(parts)


def swap_sql(live: str, scratch: str, replaced: str, live_tables: Sequence[str], new_tables: Sequence[str]) -> str:
    """Move the live tables out and the scratch tables in with ONE RENAME TABLE (all or nothing), then drop both."""
    moves = [f"{sql_identifier(live)}.{sql_identifier(t)} TO {sql_identifier(replaced)}.{sql_identifier(t)}"
             for t in live_tables]  # fmt: skip
    moves += [f"{sql_identifier(scratch)}.{sql_identifier(t)} TO {sql_identifier(live)}.{sql_identifier(t)}"
              for t in new_tables]  # fmt: skip
    statements = [
        "SET SESSION lock_wait_timeout = 60",  # a transaction holding a table makes the swap fail, not hang for a day
        f"DROP DATABASE IF EXISTS {sql_identifier(replaced)}",
        f"CREATE DATABASE {sql_identifier(replaced)}",
    ]
    if moves:
        statements.append("RENAME TABLE " + ", ".join(moves))
    statements += [f"DROP DATABASE {sql_identifier(replaced)}", f"DROP DATABASE {sql_identifier(scratch)}"]
    return "; ".join(statements)


def grant_scope(database: str) -> str:
    """The database as a GRANT names it: `_` and `%` are wildcards there, so escaped to mean themselves."""
    return sql_identifier(database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%"))


RESTORE_ACCOUNT = f"{sql_string(dbclient.RESTORE_USER)}@'localhost'"


def restore_account_sql(scratch: str, password: str) -> str:
    """The restore's temporary account (a leftover of a killed restore replaced): every right on the scratch
    database, none anywhere else, none to grant. Sent on stdin: it holds the password."""
    return (
        f"DROP USER IF EXISTS {RESTORE_ACCOUNT};\n"
        f"CREATE USER {RESTORE_ACCOUNT} IDENTIFIED BY {sql_string(password)};\n"
        f"GRANT ALL PRIVILEGES ON {grant_scope(scratch)}.* TO {RESTORE_ACCOUNT};\n"
    )


def drop_restore_account_sql() -> str:
    return f"DROP USER IF EXISTS {RESTORE_ACCOUNT}"
