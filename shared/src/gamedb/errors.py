"""Every error gamedb raises on purpose. The CLI prints each as one line and exits non-zero."""

from __future__ import annotations

import os
import sysconfig
import traceback


class GamedbError(Exception):
    """Base of every error caused by input, configuration or the database, never by a bug."""

    exit_code = 2


class InvalidSchemaName(GamedbError):
    """A schema name breaks the naming rules (pattern, length, reserved)."""


class DiscoveryError(GamedbError):
    """A service's entry point in `gamedb.schemas` is broken; the message names the distribution."""


class UnknownSchema(GamedbError):
    """A command named a schema that no installed service declares."""


class MissingSchemaArgument(GamedbError):
    """A command that works on one schema was given no `-x schema=NAME`."""


class ProjectNotFound(GamedbError):
    """No alembic.ini was found in the working directory or above it."""


class DatabaseUnavailable(GamedbError):
    """The server could not be reached or refused the login."""


class MigrationFailed(GamedbError):
    """A migration raised inside the database; its transaction was rolled back."""

    exit_code = 1


class ConcurrentBuildFailed(MigrationFailed):
    """A revision failed and left INVALID indexes (a concurrent build's); the message says which were dropped.

    `sqlstate` is the original error's when every such index was dropped (the revision may run
    again, so a lock timeout is retried as usual), else None.
    """

    def __init__(self, message: str, *, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class InvalidIndexLeftOver(MigrationFailed):
    """The schema holds an invalid index nobody builds (a killed concurrent build's); the revision was rolled back."""


class CommandFailed(GamedbError):
    """An Alembic command refused (unknown revision, drift found by `check`, ...)."""

    exit_code = 1


class EmbeddedServerError(GamedbError):
    """The embedded PostgreSQL could not be installed or started."""


class InvalidDatabaseUrl(GamedbError):
    """A database URL cannot be used (not PostgreSQL, a bad port or host, no database name)."""


class InvalidSetting(GamedbError):
    """An environment variable gamedb reads holds a value it cannot use."""


class InvalidOption(GamedbError):
    """A command-line option has a value the command cannot use (an unknown -x key, a bad --rev-id)."""


class RoleChangeFailed(GamedbError):
    """The server refused a statement of `roles apply` or `roles login`; the transaction was rolled back."""

    exit_code = 1


class SchemaLocked(GamedbError):
    """Another run held the schema's migration lock for longer than GAMEDB_LOCK_WAIT."""


class VersionTableMissing(GamedbError):
    """The schema's version table does not exist and this login may not create it."""

    exit_code = 1


class LockLost(GamedbError):
    """The connection holding the schema's migration lock died; the revision in flight was rolled back."""

    exit_code = 1


class ForeignSchema(GamedbError):
    """Upgrading from base would adopt an existing schema that holds objects gamedb did not create."""

    exit_code = 1


class AppliedRevisionChanged(GamedbError):
    """An applied revision's file differs from the checksum recorded when it ran, or is gone; nothing
    was run or changed. The message names the schema, the revision and the file."""

    exit_code = 1


class InvalidRevisionFile(GamedbError):
    """A file in a versions directory no command can use (unreadable, an id that is not one or is
    declared twice, a graph or branch label that crosses schemas); the message names file and line."""


class ChecksumRepairRefused(GamedbError):
    """`repair-checksums` was named a revision it can't accept (not applied, ambiguous, no file)."""


class RoleNotManaged(GamedbError):
    """`roles` was asked to change a role gamedb did not create (a SUPERUSER, a human login, a role
    with another comment); nothing was changed. The message says how to adopt it on purpose."""

    exit_code = 1


class InvalidLintMarker(GamedbError):
    """A `# gamedb: ...` comment in a revision file is not a well-formed lint-ignore marker."""


class InvalidLintBaseline(GamedbError):
    """The lint baseline file cannot be read, parsed or written."""


class LintFailed(GamedbError):
    """squawk itself failed (a bad --exclude, a crash), so there is no verdict on the revisions."""


# Frames in these are the machinery; the last frame outside them is the user's code that failed.
_LIBRARY_PATHS = (
    f"{os.sep}site-packages{os.sep}",
    f"{os.sep}gamedb{os.sep}",
    "<frozen ",
    f"{os.sep}migrations{os.sep}env.py",
    os.path.join(sysconfig.get_paths()["stdlib"], ""),  # Python's own (pathlib, importlib): never the user's file
)


def user_code_error(exc: BaseException) -> str:
    """An exception raised in a service's code (revision, models, types) as one line naming its file and line."""
    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if not any(part in frame.filename for part in _LIBRARY_PATHS):
            where = f"{frame.filename}, line {frame.lineno}"
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{exc.filename}, line {exc.lineno}"
        exc = SyntaxError(exc.msg)
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"{where}: {type(exc).__name__}: {message}" if where else f"{type(exc).__name__}: {message}"


class InvalidPlacement(GamedbError):
    """`[tool.gamedb.placement]` in the root pyproject.toml can't be used: a bad name, an unknown schema,
    or a server whose URL variable is not set."""


class MoveRefused(GamedbError):
    """`gamedb move` found a reason not to start (nothing was changed)."""


class MoveFailed(GamedbError):
    """`gamedb move` stopped part-way; the source stayed authoritative and what the move made was removed."""


class MoveInterrupted(GamedbError):
    """Ctrl-C during `gamedb move`: cleaned up, the source as it was."""

    exit_code = 130


class PlanRefused(GamedbError):
    """`gamedb plan` met a schema upgrade-all would refuse (broken version rows), or `--sql-dir` can't
    write a faithful script (a revision that runs Python offline SQL can't show)."""

    exit_code = 1


class SquashRefused(GamedbError):
    """`gamedb squash` would not write the squash: the range, its data steps or the proof said no; nothing changed."""
