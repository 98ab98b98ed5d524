"""Hypothesis strategies that draw a whole service schema, and the models module it renders to.

A drawn `Schema` is plain data (tables, columns, enums, indexes, checks, foreign keys, comments);
`render(schema)` writes it as a team would write models.py: declarative classes in schema `name`,
gamedb's naming convention, its own TypeDecorators in the same file. `changes(schema)` draws one edit
a team makes next (a column, a table, an index, a CHECK, a type widened, a default, nullability, an
enum value). Every failing example the properties found is kept in tests/test_generated_models.py as
a plain test with the models text it rendered.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql


# A column type: how models write it, the server defaults that fit it (in several spellings), what an
# index on it may use, and the type it may widen to (a compatible change: no data rewritten or lost).
@dataclass(frozen=True)
class Kind:
    name: str
    type: str
    defaults: tuple[str, ...] = ()
    index: str | None = "btree"  # None: no index; "gin" / "gist": only that method
    text: bool = False  # lower(col) is an expression index, length(col) > 0 a CHECK
    number: bool = False  # col >= 0 is a CHECK
    widen: str | None = None
    arrayable: bool = True
    extension: str | None = None


KINDS = [
    Kind("smallint", "sa.SmallInteger()", ("sa.text('0')", '"7"'), number=True, widen="sa.Integer()"),
    Kind("integer", "sa.Integer()", ("sa.text('42')", "sa.text('(-1)')", '"0"'), number=True, widen="sa.BigInteger()"),
    Kind("bigint", "sa.BigInteger()", ("sa.text('0')",), number=True),
    Kind("numeric", "sa.Numeric(10, 2)", ("sa.text('0')", '"1.50"'), number=True, widen="sa.Numeric(14, 2)"),
    Kind("real", "postgresql.REAL()", ("sa.text('0.5')",), number=True, widen="postgresql.DOUBLE_PRECISION()"),
    Kind("double", "postgresql.DOUBLE_PRECISION()", ("sa.text('1e3')",), number=True),
    Kind("float", "sa.Float()", ("sa.text('0')",), number=True),
    Kind("boolean", "sa.Boolean()", ("sa.true()", "sa.false()", "sa.text('false')", '"t"')),
    Kind("text", "sa.Text()", ('""', "\"''\"", "sa.text(\"'x'\")", "sa.text(\"'a'::text\")"), text=True),
    Kind("varchar", "sa.String(32)", ('""', "\"''\"", '"new"'), text=True, widen="sa.String(64)"),
    Kind("char", "sa.CHAR(2)", ('"ZZ"',), text=True),
    Kind("date", "sa.Date()", ("sa.func.current_date()", "sa.text('CURRENT_DATE')", "sa.text(\"'2020-01-01'\")")),
    Kind("time", "sa.Time()", ("sa.text('LOCALTIME')",)),
    Kind("timetz", "sa.Time(timezone=True)", ("sa.func.current_time()",)),
    Kind(
        "timestamp",
        "sa.DateTime()",
        ("sa.text('now()')", "sa.func.localtimestamp()"),
        widen="sa.DateTime(timezone=True)",
    ),
    Kind(
        "timestamptz",
        "sa.DateTime(timezone=True)",
        ("sa.func.now()", "sa.text('CURRENT_TIMESTAMP')", "sa.text(\"now() + interval '30 days'\")"),
    ),
    Kind("interval", "postgresql.INTERVAL()", ("sa.text(\"'1 day'\")", "sa.text(\"interval '2 hours'\")")),
    Kind("uuid", "postgresql.UUID()", ("sa.func.gen_random_uuid()", "sa.text('gen_random_uuid()')")),
    Kind("json", "postgresql.JSON()", ("sa.text(\"'{}'\")", "sa.text(\"'[]'::json\")"), index=None, arrayable=False),
    Kind(
        "jsonb",
        "postgresql.JSONB()",
        ("sa.text(\"'{}'::jsonb\")", "sa.text(\"'[]'\")", "sa.func.jsonb('{}')"),
        index="gin",
        arrayable=False,
    ),
    Kind("bytea", "postgresql.BYTEA()", ("sa.text(\"'\\\\x00'::bytea\")",), index=None),
    Kind("inet", "postgresql.INET()", ("sa.text(\"'127.0.0.1'\")",)),
    Kind("cidr", "postgresql.CIDR()", ("sa.text(\"'10.0.0.0/8'\")",)),
    Kind("macaddr", "postgresql.MACADDR()", ()),
    Kind("tsvector", "postgresql.TSVECTOR()", (), index="gin", arrayable=False),
    Kind("int4range", "postgresql.INT4RANGE()", ("sa.text(\"'[1,5)'\")",), index="gist"),
    Kind("daterange", "postgresql.DATERANGE()", (), index="gist"),
    Kind("tstzrange", "postgresql.TSTZRANGE()", (), index="gist"),
    Kind("numrange", "postgresql.NUMRANGE()", (), index="gist"),
    Kind("bit", "postgresql.BIT(8)", ("sa.text(\"B'00000000'\")",)),
    Kind("citext", "postgresql.CITEXT()", ('""', "\"''\""), text=True, extension="citext"),
    # SQLAlchemy's generic types, some of them TypeDecorators themselves (Interval, PickleType)
    Kind("sa_interval", "sa.Interval()", ("sa.text(\"'5 minutes'\")",)),
    Kind("sa_uuid", "sa.Uuid()", ("sa.func.gen_random_uuid()",)),
    Kind("sa_json", "sa.JSON()", ("sa.text(\"'{}'\")",), index=None, arrayable=False),
    Kind("unicode", "sa.Unicode(20)", ('"u"',), text=True, widen="sa.Unicode(40)"),
    Kind("unicode40", "sa.Unicode(40)", (), text=True),
    Kind("varchar64", "sa.String(64)", ('"new"',), text=True),
    Kind("numeric14", "sa.Numeric(14, 2)", ("sa.text('0')",), number=True),
    Kind("unicode_text", "sa.UnicodeText()", (), text=True),
    Kind("binary", "sa.LargeBinary()", (), index=None),
    Kind("pickle", "sa.PickleType()", (), index=None, arrayable=False),
    Kind("timestamp3", "postgresql.TIMESTAMP(precision=3, timezone=True)", ("sa.func.clock_timestamp()",)),
    Kind("macaddr8", "postgresql.MACADDR8()", ()),
    Kind("money", "postgresql.MONEY()", (), arrayable=False),
    Kind("oid", "postgresql.OID()", ()),
    Kind("int4multirange", "postgresql.INT4MULTIRANGE()", ("sa.text(\"'{}'\")",), index="gist", arrayable=False),
    # the service's own types (TypeDecorators), defined at the top of the models module
    Kind("guid", "GUID()", ("sa.func.gen_random_uuid()",)),
    Kind("slug", "Slug()", ('"x"',), text=True),
    Kind("slug40", "Slug(40)", (), text=True),
    Kind("document", "Document()", ("sa.text(\"'{}'::jsonb\")",), index="gin", arrayable=False),
    Kind("level", "Level(Mood)", ("sa.text('1')",), number=True),
]


def _available(type_source: str) -> bool:
    """Whether this SQLAlchemy has the type (the suite also runs on the dependency floors)."""
    module, _, name = type_source.partition("(")[0].rpartition(".")
    return not module or hasattr({"sa": sa, "postgresql": postgresql}[module], name)


KINDS = [k for k in KINDS if _available(k.type) and (k.widen is None or _available(k.widen))]
KIND = {k.name: k for k in KINDS}
# NULLS NOT DISTINCT on an index, where this SQLAlchemy knows the option
NULLS_NOT_DISTINCT = any(
    "nulls_not_distinct" in options
    for construct, options in postgresql.base.PGDialect.construct_arguments
    if construct is sa.Index
)
WIDER = {k.name: next(w for w in KINDS if w.type == k.widen) for k in KINDS if k.widen}  # each widening is a kind

TYPES_MODULE = '''
class GUID(TypeDecorator):
    """UUIDs as strings, its own __init__ without arguments."""

    impl = postgresql.UUID
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(as_uuid=False)


class Slug(TypeDecorator):
    """Lower-case text of a bounded length: its own __init__ with an optional argument."""

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int = 64) -> None:
        super().__init__(length)


class Document(TypeDecorator):
    """A JSONB document, no __init__ of its own."""

    impl = postgresql.JSONB
    cache_ok = True


class Level(TypeDecorator):
    """A Python enum stored as its position in a SMALLINT: the constructor takes the enum."""

    impl = sa.SmallInteger
    cache_ok = True

    def __init__(self, enum_class: type[enum.Enum]) -> None:
        super().__init__()
        self.enum_class = enum_class
'''

ON_DELETE = (None, "CASCADE", "SET NULL", "RESTRICT", "NO ACTION")
# the column kind that refers to a table's `id`, by the table's key
TARGET_TYPES = {
    "serial": "integer",
    "identity": "bigint",
    "identity_always": "integer",
    "sequence": "bigint",
    "uuid": "uuid",
    "composite": "integer",
}


@dataclass(frozen=True)
class Enum:
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # a KIND name, or "enum:<name>"
    array: bool = False
    nullable: bool = True
    unique: bool = False
    default: str | None = None
    comment: str | None = None
    # how an enum column declares its type: "class" Enum(PyEnum), "values" Enum('a', ...),
    # "pg" postgresql.ENUM(...), "annotation" a bare Mapped[PyEnum], "varchar" non-native,
    # "varchar_check" non-native with its CHECK
    enum_way: str = "class"


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    unique: bool = False
    where: str | None = None  # partial: "<col> IS NOT NULL"
    expression: bool = False  # lower(col)
    method: str | None = None  # gin / gist
    nulls_not_distinct: bool = False


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    table: str
    targets: tuple[str, ...]
    ondelete: str | None = None
    deferrable: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    key: str  # serial / identity / identity_always / sequence / uuid / composite
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...] = ()
    checks: tuple[tuple[str, str], ...] = ()  # (name, SQL)
    foreign_keys: tuple[ForeignKey, ...] = ()
    comment: str | None = None
    mixin: bool = False  # the table takes the shared enum column from a mixin

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class Schema:
    name: str
    enums: tuple[Enum, ...]
    tables: tuple[Table, ...]
    mixin_enum: str | None = None  # an enum column every `mixin` table gets from a mixin class
    extensions: tuple[str, ...] = field(default=())

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)


def key_columns(table: Table) -> list[str]:
    return ["id", "part"] if table.key == "composite" else ["id"]


# ---------------------------------------------------------------------------------------------- rendering


def _class_name(name: str) -> str:
    return "".join(part.title() for part in name.split("_"))


def _enum_type(schema: Schema, enum_name: str, way: str) -> str:
    enum = next(e for e in schema.enums if e.name == enum_name)
    if way == "values":
        return f"sa.Enum({', '.join(map(repr, enum.values))}, name={enum.name!r})"
    if way == "pg":
        return f"postgresql.ENUM({', '.join(map(repr, enum.values))}, name={enum.name!r})"
    if way == "varchar":  # a non-native enum: VARCHAR, no type
        return f"sa.Enum({_class_name(enum.name)}, native_enum=False, length=20)"
    if way == "varchar_check":  # a non-native enum with the CHECK SQLAlchemy adds to the table
        return f"sa.Enum({_class_name(enum.name)}, native_enum=False, create_constraint=True, name={enum.name!r})"
    return f"sa.Enum({_class_name(enum.name)}, name={enum.name!r})"


def _type(schema: Schema, column: Column) -> str:
    if column.kind.startswith("enum:"):
        base = _enum_type(schema, column.kind[5:], column.enum_way)
    else:
        base = KIND[column.kind].type
    return f"postgresql.ARRAY({base})" if column.array else base


def _column(schema: Schema, column: Column) -> str:
    optional = " | None" if column.nullable else ""
    if column.kind.startswith("enum:") and column.enum_way == "annotation" and not column.array:
        annotation = f"Mapped[{_class_name(column.kind[5:])}{optional}]"
        args = []
    else:
        annotation = f"Mapped[Any{optional}]" if column.nullable else "Mapped[Any]"
        args = [_type(schema, column)]
    args.append(f"nullable={column.nullable}")
    if column.unique:
        args.append("unique=True")
    if column.default is not None:
        args.append(f"server_default={column.default}")
    if column.comment is not None:
        args.append(f"comment={column.comment!r}")
    return f"    {column.name}: {annotation} = mapped_column({', '.join(args)})"


def _key(table: Table) -> list[str]:
    if table.key == "serial":
        return ["    id: Mapped[int] = mapped_column(sa.Integer(), primary_key=True)"]
    if table.key == "identity":
        return ["    id: Mapped[int] = mapped_column(sa.BigInteger(), sa.Identity(), primary_key=True)"]
    if table.key == "identity_always":
        return [
            "    id: Mapped[int] = mapped_column(sa.Integer(), sa.Identity(always=True, start=100), primary_key=True)"
        ]
    if table.key == "sequence":
        return [
            f"    id: Mapped[int] = mapped_column(sa.BigInteger(), sa.Sequence({table.name + '_id_seq'!r}), "
            "primary_key=True)"
        ]
    if table.key == "uuid":
        return [
            "    id: Mapped[Any] = mapped_column(postgresql.UUID(), primary_key=True, "
            "server_default=sa.func.gen_random_uuid())"
        ]
    return [
        "    id: Mapped[int] = mapped_column(sa.Integer(), primary_key=True, autoincrement=False)",
        "    part: Mapped[int] = mapped_column(sa.SmallInteger(), primary_key=True)",
    ]


def _index(schema: Schema, table: Table, index: Index) -> str:
    if index.expression:
        args = [f"sa.func.lower(sa.text({index.columns[0]!r}))"]
    else:
        args = [repr(c) for c in index.columns]
    kw = []
    if index.unique:
        kw.append("unique=True")
    if index.where:
        kw.append(f"postgresql_where=sa.text({index.where!r})")
    if index.method:
        kw.append(f"postgresql_using={index.method!r}")
        kind = KIND.get(table.column(index.columns[0]).kind)
        if index.method == "gist" and kind is not None and kind.name == "inet":
            kw.append(f"postgresql_ops={{{index.columns[0]!r}: 'inet_ops'}}")
    if index.nulls_not_distinct:
        kw.append("postgresql_nulls_not_distinct=True")
    return f"sa.Index({index.name!r}, {', '.join(args + kw)})"


def _foreign_key(schema: Schema, fk: ForeignKey) -> str:
    kw = []
    if fk.ondelete:
        kw.append(f"ondelete={fk.ondelete!r}")
    if fk.deferrable:
        kw.append("deferrable=True, initially='DEFERRED'")
    targets = [f"{schema.name}.{fk.table}.{c}" for c in fk.targets]
    return f"sa.ForeignKeyConstraint({list(fk.columns)!r}, {targets!r}{''.join(', ' + k for k in kw)})"


def render(schema: Schema) -> str:
    """The models module for `schema`, as a team would write it."""
    lines = [
        '"""Generated by tests/model_strategies.py."""',
        "",
        "from __future__ import annotations",
        "",
        "import enum",
        "from typing import Any",
        "",
        "import sqlalchemy as sa",
        "from sqlalchemy.dialects import postgresql",
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column",
        "from sqlalchemy.types import TypeDecorator",
        "",
        "from gamedb import NAMING_CONVENTION",
        "",
        f"metadata = sa.MetaData(schema={schema.name!r}, naming_convention=NAMING_CONVENTION)",
        "",
        "",
        "class Mood(enum.Enum):",
        "    calm = 1",
        "    angry = 2",
        "",
        TYPES_MODULE,
    ]
    for enum in schema.enums:
        lines += ["", f"class {_class_name(enum.name)}(str, enum.Enum):"]
        lines += [f"    {v} = {v!r}" for v in enum.values]
        lines.append("")
    lines += ["", "class Base(DeclarativeBase):", "    metadata = metadata", ""]
    if schema.mixin_enum:
        lines += [
            "",
            "class HasState:",
            f"    state: Mapped[{_class_name(schema.mixin_enum)} | None] = mapped_column(nullable=True)",
            "",
        ]
    for table in schema.tables:
        bases = ("HasState, " if table.mixin and schema.mixin_enum else "") + "Base"
        lines += ["", f"class {_class_name(table.name)}({bases}):", f"    __tablename__ = {table.name!r}"]
        args = [_index(schema, table, i) for i in table.indexes]
        args += [f"sa.CheckConstraint({sql!r}, name={name!r})" for name, sql in table.checks]
        args += [_foreign_key(schema, fk) for fk in table.foreign_keys]
        if table.comment is not None:
            args.append(f"{{'comment': {table.comment!r}}}")
        if args:
            lines.append("    __table_args__ = (" + ", ".join(args) + ",)")
        lines += _key(table)
        lines += [_column(schema, c) for c in table.columns]
        lines.append("")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- strategies

NAMES = st.sampled_from(["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta"])
VALUES = st.lists(
    st.sampled_from(["red", "green", "blue", "open", "closed", "on_hold", "x1", "Mixed"]),
    min_size=1,
    max_size=4,
    unique=True,
).map(tuple)


@st.composite
def columns(draw, enums: tuple[Enum, ...], taken: set[str], kinds: list[Kind]) -> Column:
    name = draw(NAMES.filter(lambda n: n not in taken))
    taken.add(name)
    if enums and draw(st.integers(0, 4)) == 0:
        enum = draw(st.sampled_from(enums))
        array = draw(st.booleans())
        ways = (
            ["class", "values", "pg"] if array else ["class", "values", "pg", "annotation", "varchar", "varchar_check"]
        )
        way = draw(st.sampled_from(ways))
        default = None
        if not array and draw(st.booleans()):
            default = draw(
                st.sampled_from(
                    [
                        f'"{enum.values[0]}"',
                        f"sa.text(\"'{enum.values[-1]}'\")",
                        f"{_class_name(enum.name)}.{enum.values[0]}",  # a str enum's member, as Prefect writes it
                    ]
                )
            )
        return Column(
            name, f"enum:{enum.name}", array=array, nullable=draw(st.booleans()), default=default, enum_way=way
        )
    kind = draw(st.sampled_from(kinds))
    array = kind.arrayable and draw(st.integers(0, 5)) == 0
    if array:
        spellings = [None, "sa.text(\"'{}'\")"]
        if kind.name in SIMPLE_ARRAYS:
            spellings.append(f"sa.text('ARRAY[]::{kind.name}[]')")
        default = draw(st.sampled_from(spellings))
    else:
        default = draw(st.sampled_from((None, *kind.defaults)))
    unique = not array and kind.index == "btree" and draw(st.integers(0, 5)) == 0
    comment = draw(st.sampled_from([None, None, "what it holds", "it's quoted"]))
    return Column(
        name, kind.name, array=array, nullable=draw(st.booleans()), unique=unique, default=default, comment=comment
    )


# element types whose ARRAY[]::x[] spelling is their kind's name
SIMPLE_ARRAYS = {"smallint", "integer", "bigint", "text", "uuid", "boolean", "date", "inet"}


@st.composite
def tables(draw, schema_name: str, enums: tuple[Enum, ...], earlier: list[Table], index: int, kinds) -> Table:
    name = f"t{index}"
    key = draw(st.sampled_from(["serial", "identity", "identity_always", "sequence", "uuid", "composite"]))
    taken = {"id", "part", "state"}
    cols = list(draw(st.lists(columns(enums, taken, kinds), min_size=1, max_size=4)))
    checked: set[str] = set()  # one CHECK per enum and table: the CHECK is named after the type
    for n, column in enumerate(cols):
        if column.enum_way == "varchar_check":
            if column.kind in checked:
                cols[n] = replace(column, enum_way="varchar")
            checked.add(column.kind)
    fks: list[ForeignKey] = []
    # a reference to an earlier table, or to itself (composite keys take both columns)
    candidates = [*earlier, None]
    target = draw(st.sampled_from(candidates)) if draw(st.booleans()) else "none"
    if target != "none":
        target_table = target if target is not None else Table(name, key, ())
        ref_cols = key_columns(target_table)
        local = []
        for ref in ref_cols:
            col_name = f"{target_table.name}_{ref}"
            kind = TARGET_TYPES[target_table.key] if ref == "id" else "smallint"
            cols.append(Column(col_name, kind, nullable=True))
            local.append(col_name)
        ondelete = draw(st.sampled_from(ON_DELETE))
        fks.append(ForeignKey(tuple(local), target_table.name, tuple(ref_cols), ondelete, draw(st.booleans())))
    indexes: list[Index] = []
    checks: list[tuple[str, str]] = []
    for column in cols:
        kind = KIND.get(column.kind)
        if kind is None or column.array:
            if column.array and draw(st.integers(0, 3)) == 0:
                indexes.append(Index(f"ix_{name}_{column.name}_gin", (column.name,), method="gin"))
            continue
        roll = draw(st.integers(0, 9))
        if roll == 0 and kind.index == "btree":
            indexes.append(Index(f"ix_{name}_{column.name}", (column.name,)))
        elif roll == 1 and kind.index == "btree":
            indexes.append(
                Index(f"uq_{name}_{column.name}_set", (column.name,), unique=True, where=f"{column.name} IS NOT NULL")
            )
        elif roll == 2 and kind.index == "btree" and NULLS_NOT_DISTINCT:
            indexes.append(Index(f"uq_{name}_{column.name}_nnd", (column.name,), unique=True, nulls_not_distinct=True))
        elif roll == 3 and kind.text:
            indexes.append(Index(f"ix_{name}_{column.name}_lower", (column.name,), expression=True))
        elif roll == 4 and kind.index in ("gin", "gist"):
            indexes.append(Index(f"ix_{name}_{column.name}_{kind.index}", (column.name,), method=kind.index))
        elif roll == 5 and kind.number and kind.name != "level":
            checks.append((f"{column.name}_not_negative", f"{column.name} >= 0"))
        elif roll == 6 and kind.text:
            checks.append((f"{column.name}_not_empty", f"length({column.name}) > 0"))
    mixin = draw(st.booleans())
    comment = draw(st.sampled_from([None, None, "a table", "rows of 'things'"]))
    return Table(name, key, tuple(cols), tuple(indexes), tuple(checks), tuple(fks), comment, mixin)


@st.composite
def schemas(draw, name: str, kinds: list[Kind] | None = None, max_tables: int = 3) -> Schema:
    """A whole schema for service `name`."""
    kinds = kinds if kinds is not None else KINDS
    enum_names = draw(st.lists(st.sampled_from(["status", "color", "phase"]), max_size=2, unique=True))
    enums = tuple(Enum(n, draw(VALUES)) for n in enum_names)
    drawn: list[Table] = []
    for index in range(draw(st.integers(1, max_tables))):
        drawn.append(draw(tables(name, enums, list(drawn), index, kinds)))
    if len(drawn) > 1 and drawn[-1].key != "composite" and draw(st.integers(0, 3)) == 0:
        # the first table refers to the last one: with a reference back, a cycle between new tables
        last, first = drawn[-1], drawn[0]
        column = Column(f"{last.name}_id", TARGET_TYPES[last.key])
        fk = ForeignKey((column.name,), last.name, ("id",), draw(st.sampled_from(ON_DELETE)))
        drawn[0] = replace(first, columns=(*first.columns, column), foreign_keys=(*first.foreign_keys, fk))
    mixin_enum = enums[0].name if enums and draw(st.booleans()) else None
    extensions = tuple(
        sorted({KIND[c.kind].extension for t in drawn for c in t.columns if c.kind in KIND and KIND[c.kind].extension})
    )
    return Schema(name, enums, tuple(drawn), mixin_enum, extensions)


# ---------------------------------------------------------------------------------------------- changes


def _replace_table(schema: Schema, table: Table) -> Schema:
    return replace(schema, tables=tuple(table if t.name == table.name else t for t in schema.tables))


def _referenced(schema: Schema, table: Table, column: str) -> bool:
    return (
        any(column in idx.columns for idx in table.indexes)
        or any(column in sql for _, sql in table.checks)
        or any(column in fk.columns for fk in table.foreign_keys)
        or any(fk.table == table.name and column in fk.targets for t in schema.tables for fk in t.foreign_keys)
    )


def _enum_in_database(schema: Schema, name: str) -> bool:
    """Whether a new value of enum `name` shows in the database: a native type a column uses, or a CHECK."""
    if schema.mixin_enum == name and any(t.mixin for t in schema.tables):
        return True
    return any(
        c.kind == f"enum:{name}" and (c.array or c.enum_way != "varchar") for t in schema.tables for c in t.columns
    )


@st.composite
def changes(draw, schema: Schema, kinds: list[Kind] | None = None) -> tuple[str, Schema]:
    """One edit of the models: (what it is, the schema after it)."""
    kinds = kinds if kinds is not None else KINDS
    table = draw(st.sampled_from(schema.tables))
    plain = [c for c in table.columns if not _referenced(schema, table, c.name)]
    options = ["add_column", "add_table", "add_index", "add_check", "comment"]
    if plain:
        options += ["drop_column", "default", "nullability"]
        if any(KIND.get(c.kind) and KIND[c.kind].widen and not c.array for c in plain):
            options.append("widen")
    if table.indexes:
        options.append("drop_index")
    if table.checks:
        options.append("drop_check")
    seen = [e for e in schema.enums if _enum_in_database(schema, e.name)]
    if seen:
        options.append("enum_value")
    referenced = {fk.table for t in schema.tables for fk in t.foreign_keys if t.name != fk.table}
    if len(schema.tables) > 1 and table.name not in referenced:
        options.append("drop_table")
    what = draw(st.sampled_from(options))
    if what == "add_column":
        taken = {c.name for c in table.columns} | {"id", "part", "state"}
        column = draw(columns(schema.enums, taken, kinds))
        column = replace(column, nullable=True, unique=False)
        return what, _replace_table(schema, replace(table, columns=(*table.columns, column)))
    if what == "drop_column":
        column = draw(st.sampled_from(plain))
        return what, _replace_table(schema, replace(table, columns=tuple(c for c in table.columns if c != column)))
    if what == "add_table":
        new = draw(tables(schema.name, schema.enums, list(schema.tables), len(schema.tables) + 10, kinds))
        extensions = tuple(
            sorted(
                {
                    *schema.extensions,
                    *(KIND[c.kind].extension for c in new.columns if c.kind in KIND and KIND[c.kind].extension),
                }
            )
        )
        return what, replace(schema, tables=(*schema.tables, new), extensions=extensions)
    if what == "drop_table":
        return what, replace(schema, tables=tuple(t for t in schema.tables if t != table))
    if what == "add_index":
        column = table.columns[0]
        index = Index(
            f"ix_{table.name}_added",
            (column.name,) if KIND.get(column.kind, KIND["integer"]).index == "btree" and not column.array else ("id",),
        )
        return what, _replace_table(schema, replace(table, indexes=(*table.indexes, index)))
    if what == "drop_index":
        return what, _replace_table(schema, replace(table, indexes=table.indexes[1:]))
    if what == "add_check":
        return what, _replace_table(schema, replace(table, checks=(*table.checks, ("id_present", "id IS NOT NULL"))))
    if what == "drop_check":
        return what, _replace_table(schema, replace(table, checks=table.checks[1:]))
    if what == "comment":
        column = table.columns[0]
        column = replace(column, comment=None if column.comment else "changed")
        return what, _replace_table(schema, replace(table, columns=(column, *table.columns[1:])))
    if what == "widen":
        column = draw(st.sampled_from([c for c in plain if KIND.get(c.kind) and KIND[c.kind].widen and not c.array]))
        widened = WIDER[column.kind]
        default = column.default if column.default in widened.defaults else None
        new = replace(column, kind=widened.name, default=default)
        columns_ = tuple(new if c == column else c for c in table.columns)
        return what, _replace_table(schema, replace(table, columns=columns_))
    if what == "default":
        column = draw(st.sampled_from(plain))
        # a default added or removed (two spellings of one default are no change: PostgreSQL stores one)
        if column.default is not None or column.kind.startswith("enum:") or column.array:
            default = None
        else:
            default = draw(st.sampled_from(KIND[column.kind].defaults or (None,)))
        new = replace(column, default=default)
        if new == column:
            new = replace(column, comment="changed" if column.comment != "changed" else None)
        return what, _replace_table(
            schema, replace(table, columns=tuple(new if c == column else c for c in table.columns))
        )
    if what == "nullability":
        column = draw(st.sampled_from(plain))
        new = replace(column, nullable=not column.nullable)
        return what, _replace_table(
            schema, replace(table, columns=tuple(new if c == column else c for c in table.columns))
        )
    # enum_value: a new value at the end of a type
    enum = draw(st.sampled_from(seen))
    new_value = draw(st.sampled_from(["added", "later", "archived"]).filter(lambda v: v not in enum.values))
    enums = tuple(replace(e, values=(*e.values, new_value)) if e == enum else e for e in schema.enums)
    return what, replace(schema, enums=enums)


__all__ = ["KINDS", "Schema", "changes", "dataclasses", "render", "schemas"]
