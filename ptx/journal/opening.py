"""Opening `.ptx/ptx.db`: for writing or only for reading, after making sure the file is
ptx's, and errors that tell a full or read-only disk from a damaged journal."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from ptx.core.errors import DISK_CAUSES, PtxError
from ptx.journal.schema import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    configure,
    ensure_schema,
    looks_like_ptx,
)

BUSY_TIMEOUT_MS = 5000

# SQLite's primary result codes (the low byte of an extended one), https://sqlite.org/rescode.html
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CORRUPT = 3, 8, 10, 11
_SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 13, 14, 26
# Python before 3.11 has no sqlite_errorcode: the message SQLite gives for each code.
_MESSAGES = {
    "database disk image is malformed": _SQLITE_CORRUPT,
    "file is not a database": _SQLITE_NOTADB,
    "database or disk is full": _SQLITE_FULL,
    "attempt to write a readonly database": _SQLITE_READONLY,
    "disk I/O error": _SQLITE_IOERR,
    "unable to open database file": _SQLITE_CANTOPEN,
}


class JournalError(PtxError):
    """The state store cannot be opened, read or written."""


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection to a ptx journal, checked before anything is written to it; read-only
    ones never write, so `plan`, `runs` and `report` work on a journal they cannot write."""
    try:
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = _readonly(path) if readonly else _connect(str(path), uri=False)
    except (OSError, sqlite3.Error) as exc:
        raise failure(exc, path, "cannot open") from exc
    try:
        usable = _checked(conn, path, readonly=readonly)
    except BaseException as exc:
        conn.close()
        if isinstance(exc, sqlite3.Error):
            raise failure(exc, path, "cannot use") from exc
        raise
    if not usable:  # an older ptx's journal: only a writer migrates it
        conn.close()
        return connect(path, readonly=False)
    return conn


def _checked(conn: sqlite3.Connection, path: Path, *, readonly: bool) -> bool:
    """Check (and for writing, prepare) a new connection; False for a read-only one to a
    journal of an older schema. Every opening checks the pages, so `run` and `runs` treat a
    damaged journal alike, before a run writes anything more into it."""
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    version = check_identity(conn, path)
    if readonly and version != SCHEMA_VERSION:
        return False
    if conn.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
        raise JournalError(_damaged_text(path, "its pages fail SQLite's quick_check"))
    if not readonly:
        _prepare(conn, path)
    return True


def _connect(database: str, *, uri: bool) -> sqlite3.Connection:
    return sqlite3.connect(
        database,
        uri=uri,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # autocommit: each statement commits, BEGIN when needed
        check_same_thread=False,
    )


def _readonly(path: Path) -> sqlite3.Connection:
    """`mode=ro`; where that cannot open a WAL journal because its -shm index is gone and no
    new one can be made (a read-only directory, a full disk), `immutable=1`, which reads the
    file without locks or index. That is safe only while nobody can write the journal, and
    a writer would have to grow the -wal file on that same disk, which it cannot; a -wal
    that already holds commits would be ignored, so then the error stands."""
    if not path.is_file():
        raise JournalError(f"no journal at {path}")
    uri = "file:" + quote(str(path.resolve()))
    conn = _connect(uri + "?mode=ro", uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn.close()
        wal = Path(f"{path}-wal")
        if _writable(path.parent) or (wal.exists() and wal.stat().st_size > 0):
            raise
        return _connect(uri + "?immutable=1", uri=True)
    return conn


def _writable(directory: Path) -> bool:
    """Whether a file could be created and grown in `directory`."""
    if not os.access(directory, os.W_OK):
        return False
    stats = os.statvfs(directory)
    return stats.f_bavail > 0 and not stats.f_flag & os.ST_RDONLY


def check_identity(conn: sqlite3.Connection, path: Path) -> int:
    """Refuse, before any write, a file that is not ptx's; return its schema version. A
    journal is ptx's by its application_id, or, written before ptx set one, by its tables."""
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if application_id == APPLICATION_ID:
        return version
    if application_id == 0:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables == 0 or looks_like_ptx(conn):
            return version
    raise JournalError(
        f"{path} is an SQLite database of another program (application_id {application_id},"
        f" schema version {version}), not a ptx journal; ptx leaves it unchanged:"
        " move it away or run ptx in another project"
    )


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Set the connection's pragmas and create, migrate or check the schema."""
    configure(conn, busy_timeout_ms=BUSY_TIMEOUT_MS)
    conn.execute("BEGIN IMMEDIATE")  # two ptx creating the schema at once must not both try
    try:
        unusable = ensure_schema(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("ROLLBACK" if unusable is not None else "COMMIT")
    if unusable is not None:
        raise JournalError(
            f"{path} has schema version {unusable}, this ptx reads version {SCHEMA_VERSION};"
            " use the ptx that wrote it"
        )


def _damaged_text(path: Path, detail: str) -> str:
    return (
        f"the journal {path} is damaged ({detail}); ptx will not read or write it:"
        " move it away to start afresh (its run history stays in the moved file)"
    )


def failure(exc: OSError | sqlite3.Error, path: Path, doing: str) -> JournalError:
    """One line for a journal that failed: damage, or the disk it is on (full, read-only,
    failing), which is no reason to give the journal up."""
    if isinstance(exc, OSError):
        return JournalError(f"{doing} the journal {exc.filename or path}: {_os_cause(exc, path)}")
    code = _primary_code(exc)
    if code in {_SQLITE_CORRUPT, _SQLITE_NOTADB}:
        return JournalError(_damaged_text(path, str(exc)))
    if code == _SQLITE_FULL:
        return JournalError(f"{doing} the journal {path}: {DISK_CAUSES[errno.ENOSPC]}")
    if code in {_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_CANTOPEN, _SQLITE_IOERR}:
        return JournalError(f"{doing} the journal {path}: {_disk_cause(path, str(exc))}")
    return JournalError(f"{doing} the journal {path}: {exc}")


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    return next((value for text, value in _MESSAGES.items() if text in str(exc)), None)


def _os_cause(exc: OSError, path: Path) -> str:
    if exc.errno in DISK_CAUSES:
        return DISK_CAUSES[exc.errno]
    return _disk_cause(path, exc.strerror or str(exc))


def _disk_cause(path: Path, fallback: str) -> str:
    """What keeps SQLite from writing: the file system mounted read-only, no space, else its
    own words (permissions, an I/O error)."""
    with contextlib.suppress(OSError):
        stats = os.statvfs(path.parent if path.parent.exists() else Path.cwd())
        if stats.f_flag & os.ST_RDONLY:
            return DISK_CAUSES[errno.EROFS]
        if stats.f_bavail == 0:
            return DISK_CAUSES[errno.ENOSPC]
    return fallback
