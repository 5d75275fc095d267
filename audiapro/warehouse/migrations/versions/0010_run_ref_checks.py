"""Load speed: the run references of ``cdr_legs`` and ``calls`` checked once per statement.

``cdr_legs`` and ``calls`` name the run that inserted a row (``ingest_run_id``) and the run that
last changed it (``last_ingest_run_id``). Until now four foreign keys enforced that those runs
exist; Postgres checks a foreign key with one trigger call per written row (an index probe and a
row lock on ``ingest_runs`` each), about a third of a first import's database time. A load writes
thousands of rows that all name the same one or two runs, so on Postgres the foreign keys become
statement-level triggers over the statement's transition table: one anti-join against
``ingest_runs`` per statement, after locking the referenced runs ``FOR KEY SHARE`` as the foreign
key did. A delete or key change in ``ingest_runs`` is refused, at the end of its statement, while a
leg or call still names the run: the old keys' ``ON DELETE``/``ON UPDATE NO ACTION``.

SQLite has no statement-level triggers; row-level ones refuse the same writes there (its write
cost was never the bound). Both raise an integrity error as the foreign keys did.

The partial AcctId index of ``cdr_legs`` (``ix_cdr_legs_tenant_acct_id``) goes too: no query reads
it (legs are found by ``leg_key``, session or start), and every API leg (polls, backfills) paid an
insert into it.

A later migration that rebuilds ``cdr_legs`` or ``calls`` on SQLite (batch mode) drops their
triggers with the table and must create them again (:func:`create_checks`).
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

#: Tables whose run references the triggers check (each has both columns).
_TABLES: Final = ("cdr_legs", "calls")
_ACCT_INDEX: Final = "ix_cdr_legs_tenant_acct_id"
_HAS_ACCT: Final = "acct_id IS NOT NULL"
_COLUMNS: Final = ("ingest_run_id", "last_ingest_run_id")

_PG_CHECK_FUNCTION = """
CREATE FUNCTION audiapro_check_run_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    -- Lock the named runs as a foreign key check does, so none is deleted before this commits.
    PERFORM 1 FROM ingest_runs
    WHERE id IN (SELECT ingest_run_id FROM new_rows UNION SELECT last_ingest_run_id FROM new_rows)
    FOR KEY SHARE;
    SELECT ref.id INTO missing
    FROM (SELECT ingest_run_id AS id FROM new_rows UNION SELECT last_ingest_run_id FROM new_rows) AS ref
    WHERE ref.id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ingest_runs AS run WHERE run.id = ref.id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'foreign_key_violation',
            MESSAGE = format('%s names ingest run %s, which does not exist', TG_TABLE_NAME, missing);
    END IF;
    RETURN NULL;
END
$$
"""

_PG_GUARD_FUNCTION = """
CREATE FUNCTION audiapro_guard_run_refs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    gone bigint[];
    referenced bigint;
BEGIN
    -- Only keys that no longer exist at the end of the statement matter (NO ACTION semantics).
    SELECT array_agg(gone_run.id) INTO gone FROM old_rows AS gone_run
    WHERE NOT EXISTS (SELECT 1 FROM ingest_runs AS run WHERE run.id = gone_run.id);
    IF gone IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT run_id INTO referenced FROM (
        SELECT ingest_run_id AS run_id FROM cdr_legs
        WHERE ingest_run_id = ANY (gone) OR last_ingest_run_id = ANY (gone)
        UNION ALL
        SELECT ingest_run_id FROM calls
        WHERE ingest_run_id = ANY (gone) OR last_ingest_run_id = ANY (gone)
    ) AS refs LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'foreign_key_violation',
            MESSAGE = 'ingest run still named by a leg or a call: it cannot be deleted or renumbered';
    END IF;
    RETURN NULL;
END
$$
"""


def _fk_name(table: str, column: str) -> str:
    return f"fk_{table}_{column}_ingest_runs"


def _check_trigger_names(table: str) -> tuple[str, str]:
    return f"trg_{table}_run_refs_insert", f"trg_{table}_run_refs_update"


_GUARD_TRIGGERS: Final = ("trg_ingest_runs_refs_delete", "trg_ingest_runs_refs_update")


def create_checks(table: str, dialect: str) -> None:
    """Create the triggers checking ``table``'s run references (the functions exist already).

    Args:
        table: ``cdr_legs`` or ``calls``.
        dialect: ``postgresql`` or ``sqlite``.
    """
    on_insert, on_update = _check_trigger_names(table)
    if dialect == "postgresql":
        # Transition tables allow one event per trigger, hence two.
        for name, event in ((on_insert, "INSERT"), (on_update, "UPDATE")):
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING NEW TABLE AS new_rows "
                "FOR EACH STATEMENT EXECUTE FUNCTION audiapro_check_run_refs()"
            )
        return
    missing = " OR ".join(
        f"(NEW.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ingest_runs WHERE id = NEW.{column}))"
        for column in _COLUMNS
    )
    body = f"WHEN {missing} BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed'); END"
    op.execute(f"CREATE TRIGGER {on_insert} BEFORE INSERT ON {table} FOR EACH ROW {body}")
    columns = ", ".join(_COLUMNS)
    op.execute(f"CREATE TRIGGER {on_update} BEFORE UPDATE OF {columns} ON {table} FOR EACH ROW {body}")


def _create_guards(dialect: str) -> None:
    on_delete, on_update = _GUARD_TRIGGERS
    if dialect == "postgresql":
        for name, event in ((on_delete, "DELETE"), (on_update, "UPDATE")):
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON ingest_runs REFERENCING OLD TABLE AS old_rows "
                "FOR EACH STATEMENT EXECUTE FUNCTION audiapro_guard_run_refs()"
            )
        return
    named = " OR ".join(
        f"EXISTS (SELECT 1 FROM {table} WHERE ingest_run_id = OLD.id OR last_ingest_run_id = OLD.id)"
        for table in _TABLES
    )
    body = "BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed'); END"
    op.execute(f"CREATE TRIGGER {on_delete} BEFORE DELETE ON ingest_runs FOR EACH ROW WHEN {named} {body}")
    op.execute(
        f"CREATE TRIGGER {on_update} BEFORE UPDATE OF id ON ingest_runs FOR EACH ROW "
        f"WHEN NEW.id IS NOT OLD.id AND ({named}) {body}"
    )


def upgrade() -> None:
    """Replace the four run foreign keys of ``cdr_legs`` and ``calls`` with the triggers; drop the
    AcctId index."""
    dialect = op.get_bind().dialect.name
    op.drop_index(_ACCT_INDEX, table_name="cdr_legs")
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            for column in _COLUMNS:
                batch.drop_constraint(_fk_name(table, column), type_="foreignkey")
    if dialect == "postgresql":
        op.execute(_PG_CHECK_FUNCTION)
        op.execute(_PG_GUARD_FUNCTION)
    for table in _TABLES:
        create_checks(table, dialect)
    _create_guards(dialect)


def downgrade() -> None:
    """Drop the triggers and put the foreign keys and the AcctId index back."""
    dialect = op.get_bind().dialect.name
    op.create_index(
        _ACCT_INDEX,
        "cdr_legs",
        ["tenant", "acct_id"],
        postgresql_where=sa.text(_HAS_ACCT),
        sqlite_where=sa.text(_HAS_ACCT),
    )
    for table in _TABLES:
        for name in _check_trigger_names(table):
            op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if dialect == "postgresql" else ""))
    for name in _GUARD_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON ingest_runs" if dialect == "postgresql" else ""))
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audiapro_check_run_refs()")
        op.execute("DROP FUNCTION IF EXISTS audiapro_guard_run_refs()")
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            for column in _COLUMNS:
                batch.create_foreign_key(_fk_name(table, column), "ingest_runs", [column], ["id"])
