"""The command line read beside argparse: `-x` moved to the front (the seed writes it after the
command), the command word found before parsing, and `-x schema=NAME`, the one schema a command works on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gamedb.errors import InvalidOption, MissingSchemaArgument

if TYPE_CHECKING:
    from gamedb.discovery import SchemaInfo

# Top-level options that take a value (to find the subcommand without parsing).
_VALUE_OPTIONS = frozenset({"-c", "--config", "-n", "--name", "-x"})


def hoist_x_options(argv: list[str]) -> list[str]:
    """Move every `-x VALUE` to the front, so `-x` may follow the subcommand as the seed writes it."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg == "-x" and i + 1 < len(argv):
            hoisted += ["-x", argv[i + 1]]
            i += 2
            continue
        if arg.startswith("-x") and len(arg) > 2:
            hoisted += ["-x", arg[2:]]
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


def subcommand(args: list[str]) -> str | None:
    """The command word of a command line (the first argument that is neither an option nor its value)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif arg == "--":
            return None
        elif not arg.startswith("-"):
            return arg
    return None


def schema_from_x(x_args: list[str] | None) -> str | None:
    """The value of `-x schema=NAME`, if given (once), exactly as typed; any other -x is refused."""
    values = []
    for arg in x_args or []:
        key, equals, value = arg.partition("=")
        if key != "schema" or not equals:
            raise InvalidOption(f"unknown -x option {arg!r}: gamedb takes only -x schema=NAME")
        values.append(value)
    if len(values) > 1:
        raise MissingSchemaArgument(f"-x schema given {len(values)} times: {', '.join(map(repr, values))}")
    return values[0] if values else None


def required_schema(x_args: list[str] | None, schemas: dict[str, SchemaInfo], command: str) -> SchemaInfo:
    """The schema of `-x schema=NAME` for a gamedb command that works on exactly one."""
    from gamedb.discovery import get_schema

    name = schema_from_x(x_args)
    if name is None:
        raise MissingSchemaArgument(
            f"`gamedb {command}` works on one schema: add -x schema=NAME (known schemas: {', '.join(schemas)})"
        )
    return get_schema(name, schemas)
