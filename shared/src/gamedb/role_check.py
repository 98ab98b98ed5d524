"""`gamedb roles check`: every way the database differs from the role model, one line each.

An empty list means the model holds. `gamedb roles apply` repairs everything reported here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import Connection, text

from gamedb.discovery import SchemaInfo
from gamedb.extensions import installed_extensions
from gamedb.names import EXTENSIONS_SCHEMA, VERSION_TABLE_SCHEMA
from gamedb.roles import MIGRATOR, SEQUENCE_PRIVILEGES, TABLE_PRIVILEGES, session_settings


@dataclass(frozen=True)
class Finding:
    """One deviation from the model."""

    schema: str | None  # None: global (migrator, database)
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.schema or '(global)'}: {self.kind}: {self.detail}"

    def as_json(self) -> dict[str, str | None]:
        return asdict(self)


def check_roles(connection: Connection, schemas: list[SchemaInfo]) -> list[Finding]:
    """Compare the database with the model for the global roles and every schema."""
    findings = _check_global(connection) + _check_extensions(connection, schemas)
    for info in schemas:
        findings += _check_schema(connection, info)
    return findings


def _rows(connection: Connection, query: str, **params: object) -> list[tuple]:
    return [tuple(r) for r in connection.execute(text(query), params)]


ROLE_FLAGS = """
SELECT rolcanlogin, rolinherit, rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls
FROM pg_roles WHERE rolname = :name
"""


def _role_finding(connection: Connection, schema: str | None, name: str, login: bool, inherit: bool) -> list[Finding]:
    row = _rows(connection, ROLE_FLAGS, name=name)
    if not row:
        return [Finding(schema, "missing role", name)]
    can_login, inherits, powerful = row[0]
    wrong = []
    if can_login != login:
        wrong.append("LOGIN" if can_login else "NOLOGIN")
    if inherits != inherit:
        wrong.append("INHERIT" if inherits else "NOINHERIT")
    if powerful:
        wrong.append("SUPERUSER/CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS")
    return [Finding(schema, "role attributes", f"{name} is {' '.join(wrong)}")] if wrong else []


MEMBERS = """
SELECT m.rolname, m.rolcanlogin FROM pg_auth_members a
JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
WHERE g.rolname = :name ORDER BY 1
"""
MEMBER_OF = """
SELECT g.rolname FROM pg_auth_members a
JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
WHERE m.rolname = :name ORDER BY 1
"""


def _check_global(connection: Connection) -> list[Finding]:
    findings = _role_finding(connection, None, MIGRATOR, login=False, inherit=False)
    public_db = _rows(
        connection,
        "SELECT a.privilege_type FROM pg_database d CROSS JOIN LATERAL aclexplode("
        "coalesce(d.datacl, acldefault(CAST('d' AS \"char\"), d.datdba))) a"
        " WHERE d.datname = current_database() AND a.grantee = 0",
    )
    if public_db:
        privileges = ", ".join(sorted(p for (p,) in public_db))
        findings.append(Finding(None, "database grant beyond the model", f"PUBLIC has {privileges}"))
    if _rows(
        connection,
        "SELECT has_schema_privilege('public', 'public', 'CREATE')"
        " WHERE EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public')",
    ) == [(True,)]:
        findings.append(Finding(None, "schema grant beyond the model", "PUBLIC may CREATE in schema public"))
    if not _rows(connection, "SELECT 1 FROM pg_namespace WHERE nspname = :s", s=VERSION_TABLE_SCHEMA):
        findings.append(Finding(None, "missing schema", VERSION_TABLE_SCHEMA))
    return findings


def _check_extensions(connection: Connection, schemas: list[SchemaInfo]) -> list[Finding]:
    declared = sorted({e for info in schemas for e in info.extensions})
    installed = installed_extensions(connection, declared)
    findings = []
    for name in declared:
        where = installed.get(name)
        if where != EXTENSIONS_SCHEMA:
            found = f"installed in schema {where}" if where else "not installed"
            findings.append(Finding(None, "extension", f"{name}: expected in schema {EXTENSIONS_SCHEMA}, {found}"))
    return findings


def _check_schema(connection: Connection, info: SchemaInfo) -> list[Finding]:
    s, owner, rw = info.name, info.owner_role, info.rw_role
    found = _role_finding(connection, s, owner, login=False, inherit=False)
    found += _role_finding(connection, s, rw, login=False, inherit=False)
    if any(f.kind == "missing role" for f in found):
        return found

    owner_members = {name for name, _ in _rows(connection, MEMBERS, name=owner)}
    if MIGRATOR not in owner_members:
        found.append(Finding(s, "missing membership", f"{MIGRATOR} is not a member of {owner}"))
    for extra in sorted(owner_members - {MIGRATOR}):
        found.append(Finding(s, "extra membership", f"{extra} is a member of {owner}"))
    for name, can_login in _rows(connection, MEMBERS, name=rw):
        if not can_login:
            found.append(Finding(s, "extra membership", f"{name} (not a login) is a member of {rw}"))
    for group in (g for (g,) in _rows(connection, MEMBER_OF, name=rw)):
        found.append(Finding(s, "extra membership", f"{rw} is a member of {group}"))

    schema_owner = _rows(connection, "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = :s", s=s)
    if schema_owner and schema_owner[0][0] != owner:
        found.append(Finding(s, "wrong owner", f"schema {s} is owned by {schema_owner[0][0]}"))
    for obj, who in _rows(connection, FOREIGN_OWNED, s=s, owner=owner):
        found.append(Finding(s, "wrong owner", f"{obj} is owned by {who}"))
    found += _check_grants(connection, info)
    found += _check_default_privileges(connection, info)
    found += _check_version_table(connection, info)
    found += _check_logins(connection, info)
    return found


FOREIGN_OWNED = """
SELECT c.oid::regclass::text, c.relowner::regrole::text FROM pg_class c
WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = :s)
  AND c.relkind IN ('r','p','v','m','f','S') AND c.relowner <> :owner ::regrole
UNION ALL
SELECT p.oid::regprocedure::text, p.proowner::regrole::text FROM pg_proc p
WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = :s) AND p.proowner <> :owner ::regrole
UNION ALL
SELECT t.oid::regtype::text, t.typowner::regrole::text FROM pg_type t
WHERE t.typnamespace = (SELECT oid FROM pg_namespace WHERE nspname = :s)
  AND t.typtype IN ('e', 'd') AND t.typowner <> :owner ::regrole
ORDER BY 1
"""

GRANTS = """
SELECT c.oid::regclass::text, c.relkind, coalesce(g.rolname, 'PUBLIC'), a.privilege_type
FROM pg_class c CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(
    CAST(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END AS "char"), c.relowner))) a
LEFT JOIN pg_roles g ON g.oid = a.grantee
WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = :s)
  AND c.relkind IN ('r','p','v','m','f','S') AND a.grantee <> c.relowner
ORDER BY 1, 3, 4
"""


def _check_grants(connection: Connection, info: SchemaInfo) -> list[Finding]:
    found: list[Finding] = []
    held: dict[tuple[str, str], set[str]] = {}
    kinds: dict[str, str] = {}
    for obj, kind, grantee, privilege in _rows(connection, GRANTS, s=info.name):
        kinds[obj] = kind
        held.setdefault((obj, grantee), set()).add(privilege)
    for table, kind in _rows(
        connection,
        "SELECT c.oid::regclass::text, c.relkind FROM pg_class c WHERE c.relkind IN ('r','p','v','m','f','S')"
        " AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = :s)",
        s=info.name,
    ):
        kinds[table] = kind
    for obj, kind in sorted(kinds.items()):
        allowed = set(SEQUENCE_PRIVILEGES if kind == "S" else TABLE_PRIVILEGES)
        have = held.get((obj, info.rw_role), set())
        if allowed - have:
            found.append(
                Finding(
                    info.name, "missing grant", f"{info.rw_role} lacks {', '.join(sorted(allowed - have))} on {obj}"
                )
            )
        if have - allowed:
            found.append(
                Finding(
                    info.name,
                    "grant beyond the model",
                    f"{info.rw_role} has {', '.join(sorted(have - allowed))} on {obj}",
                )
            )
    for (obj, grantee), privileges in sorted(held.items()):
        if grantee != info.rw_role:
            found.append(
                Finding(info.name, "grant beyond the model", f"{grantee} has {', '.join(sorted(privileges))} on {obj}")
            )
    schema_acl = _rows(
        connection,
        "SELECT coalesce(g.rolname, 'PUBLIC'), a.privilege_type FROM pg_namespace n"
        " CROSS JOIN LATERAL aclexplode(n.nspacl) a LEFT JOIN pg_roles g ON g.oid = a.grantee"
        " WHERE n.nspname = :s AND a.grantee <> n.nspowner ORDER BY 1, 2",
        s=info.name,
    )
    rw_on_schema = {p for who, p in schema_acl if who == info.rw_role}
    if _rows(connection, "SELECT 1 FROM pg_namespace WHERE nspname = :s", s=info.name) and "USAGE" not in rw_on_schema:
        found.append(Finding(info.name, "missing grant", f"{info.rw_role} lacks USAGE on schema {info.name}"))
    for who, privilege in schema_acl:
        if (who, privilege) != (info.rw_role, "USAGE"):
            found.append(Finding(info.name, "grant beyond the model", f"{who} has {privilege} on schema {info.name}"))
    return found


DEFAULT_ACL = """
SELECT d.defaclobjtype, coalesce(g.rolname, 'PUBLIC'), a.privilege_type
FROM pg_default_acl d CROSS JOIN LATERAL aclexplode(d.defaclacl) a LEFT JOIN pg_roles g ON g.oid = a.grantee
WHERE d.defaclrole = :owner ::regrole AND d.defaclnamespace = 0
"""
EXPECTED_DEFAULTS = {
    ("r", "SELECT"),
    ("r", "INSERT"),
    ("r", "UPDATE"),
    ("r", "DELETE"),
    ("S", "USAGE"),
    ("S", "SELECT"),
    ("f", "EXECUTE"),
    ("n", "USAGE"),
}
OBJECT_TYPE = {"r": "tables", "S": "sequences", "f": "functions", "n": "schemas"}


def _check_default_privileges(connection: Connection, info: SchemaInfo) -> list[Finding]:
    rows = _rows(connection, DEFAULT_ACL, owner=info.owner_role)
    have = {(kind, privilege) for kind, grantee, privilege in rows if grantee == info.rw_role}
    found = [
        Finding(info.name, "missing default privilege", f"{info.rw_role} would not get {p} on new {OBJECT_TYPE[k]}")
        for k, p in sorted(EXPECTED_DEFAULTS - have)
    ]
    if not any(kind == "f" for kind, _, _ in rows):
        found.append(Finding(info.name, "missing default privilege", "PUBLIC would get EXECUTE on new functions"))
    return found


def _check_version_table(connection: Connection, info: SchemaInfo) -> list[Finding]:
    qualified = f"{VERSION_TABLE_SCHEMA}.{info.version_table}"
    row = _rows(
        connection,
        "SELECT c.relowner::regrole::text, has_table_privilege(:rw, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')"
        " FROM pg_class c WHERE c.oid = to_regclass(:table)",
        rw=info.rw_role,
        table=qualified,
    )
    if not row:
        return [Finding(info.name, "missing version table", qualified)]
    table_owner, rw_can = row[0]
    found = []
    if table_owner != info.owner_role:
        found.append(Finding(info.name, "wrong owner", f"{qualified} is owned by {table_owner}"))
    if rw_can:
        found.append(Finding(info.name, "grant beyond the model", f"{info.rw_role} can use {qualified}"))
    return found


LOGIN_SETTINGS = """
SELECT m.rolname, s.setconfig FROM pg_auth_members a
JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
LEFT JOIN pg_db_role_setting s ON s.setrole = m.oid
     AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
WHERE g.rolname = :rw AND m.rolcanlogin ORDER BY 1
"""


def _check_logins(connection: Connection, info: SchemaInfo) -> list[Finding]:
    found = []
    expected = session_settings(info)
    for login, config in _rows(connection, LOGIN_SETTINGS, rw=info.rw_role):
        current = dict(item.split("=", 1) for item in (config or []))
        for name, value in expected.items():
            if current.get(name) != value:
                found.append(
                    Finding(
                        info.name, "login setting", f"{login} has {name}={current.get(name, 'unset')}, expected {value}"
                    )
                )
        for (group,) in _rows(connection, MEMBER_OF, name=login):
            if group == MIGRATOR:  # membership in the owner is reported with the owner's members
                found.append(Finding(info.name, "extra membership", f"service login {login} is a member of {group}"))
    return found
