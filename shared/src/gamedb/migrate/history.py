"""The append-only record of a schema's revisions: `alembic.gamedb_checksums_<s>`.

Invariant: rows are only ever added. Each row is one event of one revision (`applied`, `stamped`,
`first seen`, `repaired`, `squashed`, `downgraded`, `stamped down`, `not applied`), with the checksum of its file
at that moment, who and when; a revision's latest row is what is believed of it now. The first row
(`history started`, no revision) is written with the table. Each row carries the hash of the row
before it and its own (`prev_hash`, `row_hash`: sha256 of a jsonb array of the row's fields), and
the table's comment names the last row (`gamedb history: <rows> <row_hash>`), so rows deleted or
changed by someone able to bypass the function (a superuser) break the chain or the head.

Who writes: only `alembic.gamedb_record_<s>(...)`, a SECURITY DEFINER function owned by the table's
owner with a fixed search_path. Under the role model the owner is `gamedb_history`, a NOLOGIN role
no login is a member of, and EXECUTE is granted to `<s>_owner` alone (what a migration runs as): no
managed login can UPDATE, DELETE or TRUNCATE a row, whatever role it can SET ROLE to. The function
refuses to record a revision as applied, stamped or first seen with a checksum other than the one
its latest row has (an edit is accepted only as `repaired`, which names who accepted it). A
`squashed` event (`gamedb squash` replaced the revision's file) needs a latest row of the revision,
and either keeps its checksum or names it as the one it replaces (`replaced_checksum`): the
checksums a revision had stay one line. What justifies a squash (the squash file's
`squashed_checksums`) is checked by gamedb before it calls the function, not by the function:
like `repaired`, whoever may EXECUTE it may record one.

A database whose function predates `squashed` gets the current definition from the next run that
may replace it (its owner: `gamedb roles apply` under the role model); CREATE OR REPLACE keeps
its owner and grants.
"""

from __future__ import annotations

from psycopg import sql

from gamedb.names import VERSION_TABLE_SCHEMA, quote_literal

HISTORY_OWNER = "gamedb_history"  # NOLOGIN, no members: owns every schema's record (roles apply)
STARTED = "history started"
SQUASHED = "squashed"
APPLIED_REASONS = ("applied", "stamped", "first seen", "repaired", SQUASHED)
UNAPPLIED_REASONS = ("downgraded", "stamped down", "not applied")
REASONS = (STARTED, *APPLIED_REASONS, *UNAPPLIED_REASONS)
HEAD_PREFIX = "gamedb history: "
# SQLSTATE of the function's refusal to record an edited revision (a class no PostgreSQL error uses)
EDITED_SQLSTATE = "GDB02"
# Written into the function's body: a function without it is of an earlier gamedb and is replaced
FUNCTION_VERSION = "gamedb_record v2 (squashed)"

# The hash of a row: its fields as one jsonb array (unambiguous, the same text on every server and
# time zone), sha256, hex. The same expression recomputes it when the chain is checked.
_ROW_HASH = (
    "'sha256:' || encode(pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.jsonb_build_array("
    "{prev}, {seq}, {revision}, {reason}, {checksum}, {file}, "
    "pg_catalog.to_char({at} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
    "{by}, {as_}, {replaced})::text, 'UTF8')), 'hex')"
)


def table_name(checksum_table: str) -> str:
    return sql.Identifier(VERSION_TABLE_SCHEMA, checksum_table).as_string(None)


def function_name(schema: str) -> str:
    """The recording function's name (schema `alembic`), unquoted: `gamedb_record_<s>`."""
    return f"gamedb_record_{schema}"


def function_signature(schema: str) -> str:
    return (
        sql.Identifier(VERSION_TABLE_SCHEMA, function_name(schema)).as_string(None) + "(text, text, text, text, text)"
    )


def create_table_sql(checksum_table: str) -> str:
    """CREATE TABLE of the new form (no IF NOT EXISTS: callers look first)."""
    return (
        f"CREATE TABLE {table_name(checksum_table)} (seq bigint NOT NULL, revision varchar(32) NOT NULL, "
        "reason text NOT NULL, checksum text NOT NULL, file text NOT NULL, recorded_at timestamptz NOT NULL, "
        "recorded_by text NOT NULL, recorded_as text NOT NULL, replaced_checksum text, prev_hash text NOT NULL, "
        f"row_hash text NOT NULL, CONSTRAINT {sql.Identifier(checksum_table + '_pkey').as_string(None)} "
        "PRIMARY KEY (seq))"
    )


def create_function_sql(schema: str, checksum_table: str) -> str:
    """CREATE OR REPLACE of the recording function: the only way a row gets in."""
    table = table_name(checksum_table)
    row_hash = _ROW_HASH.format(
        prev="last_hash",
        seq="next_seq",
        revision="p_revision",
        reason="p_reason",
        checksum="p_checksum",
        file="p_file",
        at="at_time",
        by="by_login",
        as_="as_role",
        replaced="p_replaced",
    )
    reasons = ", ".join(quote_literal(r) for r in REASONS)
    applied = ", ".join(quote_literal(r) for r in ("applied", "stamped", "first seen"))
    return f"""
CREATE OR REPLACE FUNCTION {sql.Identifier(VERSION_TABLE_SCHEMA, function_name(schema)).as_string(None)}(
    p_revision text, p_reason text, p_checksum text, p_file text, p_replaced text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $gamedb_fn$
DECLARE
    last_seq bigint; last_hash text; next_seq bigint; new_hash text; at_time timestamptz := now();
    by_login text := session_user;
    as_role text := CASE WHEN current_setting('role') = 'none' THEN session_user ELSE current_setting('role') END;
    known record;
BEGIN
    -- {FUNCTION_VERSION}
    IF p_reason NOT IN ({reasons}) OR (p_reason = {quote_literal(STARTED)}) <> (p_revision = '') THEN
        -- no % placeholders anywhere: an offline (--sql) script doubles them
        RAISE EXCEPTION USING MESSAGE = 'gamedb history: ' || p_reason || ' is not an event of a revision';
    END IF;
    LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;  -- one appender at a time: the chain stays a line
    IF p_reason IN ({applied}) THEN
        SELECT checksum, reason, recorded_at, file INTO known FROM {table}
        WHERE revision = p_revision ORDER BY seq DESC LIMIT 1;
        IF FOUND AND known.checksum <> p_checksum THEN
            RAISE EXCEPTION USING ERRCODE = {quote_literal(EDITED_SQLSTATE)}, MESSAGE = 'revision ' || p_revision
                || ' was recorded (' || known.reason || ', at ' || known.recorded_at || ') with another checksum '
                || 'than its file ' || p_file || ' has now: it was edited since; restore it, or accept the change '
                || 'with gamedb repair-checksums -x schema={schema} ' || p_revision;
        END IF;
    END IF;
    IF p_reason = {quote_literal(SQUASHED)} THEN
        SELECT checksum, reason, recorded_at, file INTO known FROM {table}
        WHERE revision = p_revision ORDER BY seq DESC LIMIT 1;
        IF NOT FOUND OR known.checksum <> coalesce(p_replaced, p_checksum) THEN
            RAISE EXCEPTION USING ERRCODE = {quote_literal(EDITED_SQLSTATE)}, MESSAGE = 'revision ' || p_revision
                || ' may be recorded as squashed only over its latest checksum ('
                || coalesce(known.checksum, 'none recorded') || '), named as the one replaced';
        END IF;
    END IF;
    SELECT seq, row_hash INTO last_seq, last_hash FROM {table} ORDER BY seq DESC LIMIT 1;
    next_seq := coalesce(last_seq, 0) + 1;
    last_hash := coalesce(last_hash, '');
    new_hash := {row_hash};
    INSERT INTO {table} (seq, revision, reason, checksum, file, recorded_at, recorded_by, recorded_as,
                         replaced_checksum, prev_hash, row_hash)
    VALUES (next_seq, p_revision, p_reason, p_checksum, p_file, at_time, by_login, as_role, p_replaced,
            last_hash, new_hash);
    EXECUTE 'COMMENT ON TABLE ' || {quote_literal(table)} || ' IS '
        || quote_literal({quote_literal(HEAD_PREFIX)} || next_seq || ' ' || new_hash);
END $gamedb_fn$"""


def _start_sql(schema: str) -> str:
    name = sql.Identifier(VERSION_TABLE_SCHEMA, function_name(schema)).as_string(None)
    return f"PERFORM {name}('', {quote_literal(STARTED)}, '', '', NULL)"


# The old form (a row per revision, PRIMARY KEY (revision), rows deleted by downgrades): its rows
# become the first events of the new table, oldest first, then the old table is dropped.
def _convert_sql(schema: str, checksum_table: str) -> str:
    table = table_name(checksum_table)
    name = sql.Identifier(VERSION_TABLE_SCHEMA, function_name(schema)).as_string(None)
    old = sql.Identifier(VERSION_TABLE_SCHEMA, checksum_table + "_old").as_string(None)
    old_name = sql.Identifier(checksum_table + "_old").as_string(None)
    return f"""
ALTER TABLE {table} RENAME TO {old_name};
ALTER INDEX IF EXISTS {sql.Identifier(VERSION_TABLE_SCHEMA, checksum_table + "_pkey").as_string(None)}
    RENAME TO {sql.Identifier(checksum_table + "_old_pkey").as_string(None)};
DROP FUNCTION IF EXISTS {function_signature(schema)};
EXECUTE {quote_literal(create_table_sql(checksum_table))};
REVOKE ALL ON TABLE {table} FROM PUBLIC;
EXECUTE {quote_literal(create_function_sql(schema, checksum_table))};
REVOKE ALL ON FUNCTION {function_signature(schema)} FROM PUBLIC;
{_start_sql(schema)};
FOR old_row IN EXECUTE 'SELECT revision, reason, checksum, file, replaced_checksum FROM {old}
                        ORDER BY recorded_at, revision' LOOP
    PERFORM {name}(old_row.revision, CASE WHEN old_row.reason IN ('applied', 'stamped', 'first seen', 'repaired')
                   THEN old_row.reason ELSE 'first seen' END, old_row.checksum, old_row.file,
                   old_row.replaced_checksum);
END LOOP;
DROP TABLE {old};"""


def ensure_statement(schema: str, checksum_table: str, rw_role: str | None = None) -> str:
    """One DO block: create the record (table, function, first row) when missing, or convert an old-form
    table keeping its rows; nothing when it is there in the new form. Closed to everyone but its owner."""
    table = table_name(checksum_table)
    revoke_rw = ""
    if rw_role is not None:
        revoke_rw = (
            f"IF EXISTS (SELECT FROM pg_roles WHERE rolname = {quote_literal(rw_role)}) THEN "
            f"EXECUTE {quote_literal(f'REVOKE ALL ON TABLE {table} FROM {sql.Identifier(rw_role).as_string(None)}')}; "
            "END IF;"
        )
    return f"""DO $gamedb$ DECLARE old_row record; BEGIN
IF to_regclass({quote_literal(table)}) IS NULL THEN
    DROP FUNCTION IF EXISTS {function_signature(schema)};  -- a function left without its table: made anew
    EXECUTE {quote_literal(create_table_sql(checksum_table))};
    REVOKE ALL ON TABLE {table} FROM PUBLIC;
    {revoke_rw}
    EXECUTE {quote_literal(create_function_sql(schema, checksum_table))};
    REVOKE ALL ON FUNCTION {function_signature(schema)} FROM PUBLIC;
    {_start_sql(schema)};
ELSIF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass({quote_literal(table)})
                  AND attname = 'row_hash' AND NOT attisdropped) THEN
    {_convert_sql(schema, checksum_table)}
    {revoke_rw}
ELSIF NOT EXISTS (SELECT FROM pg_catalog.pg_proc
                  WHERE oid = to_regprocedure({quote_literal(function_signature(schema))})
                  AND position({quote_literal(FUNCTION_VERSION)} IN prosrc) > 0) THEN
    -- the function of an earlier gamedb: the current one (CREATE OR REPLACE keeps owner and grants)
    EXECUTE {quote_literal(create_function_sql(schema, checksum_table))};
    REVOKE ALL ON FUNCTION {function_signature(schema)} FROM PUBLIC;
END IF; END $gamedb$"""


def is_old_form_sql(checksum_table: str) -> str:
    """A query: true when the table exists in the old form (no hash chain)."""
    table = table_name(checksum_table)
    return (
        f"SELECT to_regclass({quote_literal(table)}) IS NOT NULL AND NOT EXISTS (SELECT FROM pg_attribute "
        f"WHERE attrelid = to_regclass({quote_literal(table)}) AND attname = 'row_hash' AND NOT attisdropped)"
    )


def function_outdated_sql(schema: str) -> str:
    """A query: true when the recording function is missing or of an earlier gamedb."""
    return (
        "SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_proc WHERE oid = "
        f"to_regprocedure({quote_literal(function_signature(schema))}) "
        f"AND position({quote_literal(FUNCTION_VERSION)} IN prosrc) > 0)"
    )


def record_sql(schema: str) -> str:
    """The call that appends one event (bound parameters :revision :reason :checksum :file :replaced)."""
    name = sql.Identifier(VERSION_TABLE_SCHEMA, function_name(schema)).as_string(None)
    return f"SELECT {name}(:revision, :reason, :checksum, :file, :replaced)"


def record_calls(schema: str, count: int) -> list[str]:
    """`count` calls of the recording function with bound values `:revision_<i>`, `:reason_<i>`,
    `:checksum_<i>`, `:file_<i>`, `:replaced_<i>` (gamedb.migrate.checksums.event_values)."""
    name = sql.Identifier(VERSION_TABLE_SCHEMA, function_name(schema)).as_string(None)
    return [
        f"{name}(:revision_{i}, :reason_{i}, :checksum_{i}, :file_{i}, CAST(:replaced_{i} AS text))"
        for i in range(count)
    ]


def record_many_sql(schema: str, count: int) -> str:
    """One statement appending `count` events in one round trip; PostgreSQL evaluates a select list
    in order, so they get their rows in the order given."""
    return "SELECT " + ", ".join(record_calls(schema, count))


# Per table: the latest row of each revision, and the chain checked row by row. `broken`: the first
# seq whose prev_hash is not the row before's row_hash, whose row_hash is not its fields' hash, or
# that is not one more than the row before; `head`: the table's comment.
CHAIN_CHECK = (
    "SELECT count(*) AS rows, min(seq) AS first, max(seq) AS last, "
    "min(seq) FILTER (WHERE NOT ok) AS broken, "
    "(array_agg(row_hash ORDER BY seq DESC))[1] AS head, "
    "(array_agg(reason ORDER BY seq))[1] AS first_reason, "
    "obj_description(to_regclass({table_literal}), 'pg_class') AS comment "
    "FROM (SELECT seq, row_hash, reason, "
    "prev_hash = coalesce(lag(row_hash) OVER w, '') AND seq = coalesce(lag(seq) OVER w, 0) + 1 AND row_hash = "
    + _ROW_HASH.format(
        prev="prev_hash",
        seq="seq",
        revision="revision",
        reason="reason",
        checksum="checksum",
        file="file",
        at="recorded_at",
        by="recorded_by",
        as_="recorded_as",
        replaced="replaced_checksum",
    )
    + " AS ok FROM {table} WINDOW w AS (ORDER BY seq)) chain"
)
LATEST = (
    "SELECT DISTINCT ON (revision) revision, checksum, file, reason FROM {table} "
    "WHERE revision <> '' ORDER BY revision, seq DESC"
)


def chain_problem(
    table: str,
    rows: int,
    first: int | None,
    last: int | None,
    broken: int | None,
    head: str | None,
    first_reason: str | None,
    comment: str | None,
) -> str | None:
    """Why a record can't be trusted (rows changed, deleted or truncated), or None."""
    where = f"{VERSION_TABLE_SCHEMA}.{table}"
    if rows == 0:
        return f"its history {where} is empty: its rows were deleted (truncated)"
    if first != 1 or first_reason != STARTED:
        return f"its history {where} lost its first rows (truncated): it starts at row {first}"
    if broken is not None:
        return f"its history {where} was altered: row {broken} does not chain to the row before it (broken chain)"
    if comment is None or not comment.startswith(HEAD_PREFIX):
        return f"its history {where} lost its head (the table's comment): rows may have been deleted (truncated)"
    count, _, head_hash = comment.removeprefix(HEAD_PREFIX).partition(" ")
    if count != str(last) or head_hash != head:
        return (
            f"its history {where} ends at row {last} but its head names row {count}: "
            "rows were deleted or changed (truncated chain)"
        )
    return None


# The same reads for status's one-request catalog script (format() arguments: 1 = schema `alembic`,
# 2 = the table's name, 3 = its qualified name as text).
LATEST_JSON = (
    "SELECT coalesce(jsonb_object_agg(revision, jsonb_build_array(checksum, file, reason)), '{}') FROM ("
    + LATEST.format(table="%1$I.%2$I")
    + ") latest"
)
CHAIN_JSON = "SELECT to_jsonb(c) FROM (" + CHAIN_CHECK.format(table="%1$I.%2$I", table_literal="%3$L") + ") c"
OLD_FORM_JSON = (
    "SELECT coalesce(jsonb_object_agg(revision, jsonb_build_array(checksum, file, 'applied')), '{}') FROM %1$I.%2$I"
)
