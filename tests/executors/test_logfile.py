"""Tests for executors.logfile: an attempt's log is created without a name and named once it is
worth keeping. Real files, real descriptors, real processes."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_process import _sh

from ptx.executors import process
from ptx.executors.logfile import LogFile, log_end
from ptx.executors.process import ProcessOutcome, Stop

if TYPE_CHECKING:
    from collections.abc import Callable

HANG_GUARD = 10.0  # generous upper bound that only catches hangs

unnamed_only = pytest.mark.skipif(
    not LogFile.unnamed, reason="no O_TMPFILE here: every log is named at once"
)


def _same_file(path: Path, log: LogFile) -> bool:
    here, there = path.stat(), os.fstat(log.fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {HANG_GUARD:g} s for {what}")
        time.sleep(0.01)


# --- unnamed until published --------------------------------------------------------------------


@unnamed_only
def test_a_fresh_log_has_no_name_until_it_is_published_then_grows_by_that_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "1.log"
    log = LogFile(str(path))
    try:
        os.write(log.fd, b"before\n")
        assert not path.exists()
        assert list(tmp_path.iterdir()) == []  # no temporary name either
        log.publish()
        assert path.read_bytes() == b"before\n"
        assert _same_file(path, log)  # the open file itself, not a copy
        os.write(log.fd, b"after\n")
        assert path.read_bytes() == b"before\nafter\n"
    finally:
        log.close()
    assert path.read_bytes() == b"before\nafter\n"


@unnamed_only
def test_closing_a_log_nothing_was_written_to_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    LogFile(str(path)).close()
    assert list(tmp_path.iterdir()) == []


@unnamed_only
def test_closing_a_log_that_was_written_to_names_it_with_exactly_what_was_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "1.log"
    log = LogFile(str(path))
    os.write(log.fd, b"no newline at the end")
    assert not path.exists()
    log.close()
    assert [entry.name for entry in tmp_path.iterdir()] == ["1.log"]
    assert path.read_bytes() == b"no newline at the end"


@unnamed_only
def test_a_log_that_only_got_a_note_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    log = LogFile(str(path))
    log.note("cannot start x: no such file or directory")
    log.close()
    assert path.read_text() == "[ptx] cannot start x: no such file or directory\n"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (b"", b"[ptx] text\n"),
        (b"partial", b"partial\n[ptx] text\n"),
        (b"whole line\n", b"whole line\n[ptx] text\n"),
        (b"two\n\n", b"two\n\n[ptx] text\n"),
    ],
    ids=["empty", "unterminated", "terminated", "blank-line"],
)
def test_a_note_starts_on_a_line_of_its_own(tmp_path: Path, output: bytes, expected: bytes) -> None:
    path = tmp_path / "1.log"
    log = LogFile(str(path))
    try:
        os.write(log.fd, output)
        log.note("text")
        log.note("again")
    finally:
        log.close()
    assert path.read_bytes() == expected + b"[ptx] again\n"


def test_a_missing_directory_is_created(tmp_path: Path) -> None:
    directory = tmp_path / "logs" / "run"
    log = LogFile(str(directory / "1.log"))
    try:
        assert directory.is_dir()
        os.write(log.fd, b"x\n")
    finally:
        log.close()
    assert (directory / "1.log").read_bytes() == b"x\n"


def test_a_relative_path_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    log = LogFile("1.log")
    try:
        os.write(log.fd, b"here\n")
        log.publish()
        assert (tmp_path / "1.log").read_bytes() == b"here\n"
    finally:
        log.close()


def test_an_existing_log_is_appended_to_and_named_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    path.write_bytes(b"first attempt\n")
    log = LogFile(str(path))
    try:
        assert _same_file(path, log)  # no publish() needed
        os.write(log.fd, b"second\n")
        assert path.read_bytes() == b"first attempt\nsecond\n"
    finally:
        log.close()
    assert path.read_bytes() == b"first attempt\nsecond\n"
    LogFile(str(path)).close()  # nothing written: an existing file stays as it is
    assert path.read_bytes() == b"first attempt\nsecond\n"


# --- without O_TMPFILE ----------------------------------------------------------------------


def test_with_unnamed_files_off_the_log_is_named_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LogFile, "unnamed", False)
    path = tmp_path / "logs" / "1.log"
    log = LogFile(str(path))
    try:
        assert _same_file(path, log)
        assert path.read_bytes() == b""
        os.write(log.fd, b"x\n")
        log.publish()  # nothing left to do
        assert path.read_bytes() == b"x\n"
    finally:
        log.close()
    assert path.read_bytes() == b"x\n"
    empty = tmp_path / "logs" / "2.log"
    LogFile(str(empty)).close()
    assert empty.read_bytes() == b""  # created at open, with its name: kept even empty


def _refusing_tmpfile(
    monkeypatch: pytest.MonkeyPatch, error: int
) -> list[str | bytes | os.PathLike[str] | os.PathLike[bytes]]:
    """Make every O_TMPFILE open fail with `error`; returns the paths it was asked to open."""
    real_open = os.open
    tried: list[str | bytes | os.PathLike[str] | os.PathLike[bytes]] = []

    def refusing(
        path: str | bytes | os.PathLike[str] | os.PathLike[bytes],
        flags: int,
        mode: int = 0o777,
        *,
        dir_fd: int | None = None,
    ) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            tried.append(path)
            raise OSError(error, os.strerror(error), path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", refusing)
    return tried


@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="no O_TMPFILE on this OS")
@pytest.mark.parametrize("error", [errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL])
def test_a_filesystem_that_refuses_o_tmpfile_gets_named_files_from_then_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    monkeypatch.setattr(LogFile, "unnamed", True)  # and restored, whatever ptx sets it to
    tried = _refusing_tmpfile(monkeypatch, error)
    first, second = tmp_path / "1.log", tmp_path / "2.log"
    log = LogFile(str(first))
    try:
        assert _same_file(first, log)
        os.write(log.fd, b"one\n")
    finally:
        log.close()
    assert first.read_bytes() == b"one\n"
    assert LogFile.unnamed is False
    LogFile(str(second)).close()
    assert second.exists()
    assert tried == [str(tmp_path)]  # asked once, not again for every log


@pytest.mark.skipif(not hasattr(os, "O_TMPFILE"), reason="no O_TMPFILE on this OS")
def test_any_other_error_of_an_o_tmpfile_open_is_raised_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LogFile, "unnamed", True)
    _refusing_tmpfile(monkeypatch, errno.EACCES)
    with pytest.raises(PermissionError):
        LogFile(str(tmp_path / "1.log"))
    assert LogFile.unnamed is True
    assert list(tmp_path.iterdir()) == []


# --- publishing -------------------------------------------------------------------------------


@unnamed_only
def test_publishing_twice_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    log = LogFile(str(path))
    try:
        os.write(log.fd, b"a\n")
        log.publish()
        log.publish()
        os.write(log.fd, b"b\n")
    finally:
        log.close()
    assert [entry.name for entry in tmp_path.iterdir()] == ["1.log"]
    assert path.read_bytes() == b"a\nb\n"


@unnamed_only
def test_a_file_someone_else_created_meanwhile_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "1.log"
    log = LogFile(str(path))
    try:
        os.write(log.fd, b"ours\n")
        path.write_bytes(b"theirs\n")
        log.publish()
        assert not _same_file(path, log)
        os.write(log.fd, b"more of ours\n")
        log.note("a note")
    finally:
        log.close()
    assert path.read_bytes() == b"theirs\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["1.log"]


# --- through process.spawn: when a command's log gets its name ----------------------------------


@unnamed_only
@pytest.mark.parametrize(
    ("script", "content"), [("true", None), ("exit 3", None), ("echo hi", "hi\n")]
)
def test_a_quick_command_keeps_a_log_only_if_it_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, content: str | None
) -> None:
    monkeypatch.setattr(process, "NAME_AFTER", HANG_GUARD)  # it surely ends before it is named
    spec = _sh(tmp_path, script)
    outcome = process.run_process(spec, Stop())
    assert outcome.exit_code == (3 if script == "exit 3" else 0)
    path = Path(spec.log_path)
    assert (path.read_text() if path.exists() else None) == content


def test_a_supervised_command_has_its_log_named_while_it_runs(
    tmp_path: Path, pid_file: Path
) -> None:
    go = tmp_path / "go"
    script = f"echo $$ >> '{pid_file}'; while [ ! -e '{go}' ]; do sleep 0.01; done; echo done"
    spec = _sh(tmp_path, script)
    path = Path(spec.log_path)
    outcomes: list[ProcessOutcome] = []
    supervisor = threading.Thread(target=lambda: outcomes.append(process.run_process(spec, Stop())))
    supervisor.start()
    try:
        wait_for(path.exists, "the log to get its name")
        assert supervisor.is_alive()  # the command waits for `go`: it cannot have ended
        with path.open("rb") as follower:  # what tail -f does
            assert follower.read() == b""
            go.touch()
            supervisor.join(HANG_GUARD)
            assert follower.read() == b"done\n"
    finally:
        go.touch()
        supervisor.join(HANG_GUARD)
    assert [outcome.exit_code for outcome in outcomes] == [0]


def test_only_the_end_of_a_long_log_is_read(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    path.write_bytes(b"0123456789")
    assert log_end(path, 4) == (b"6789", 6)
    assert log_end(path, 40) == (b"0123456789", 0)
    assert log_end(str(path), 4, size=8) == (b"4567", 4)  # what was there when it was measured
    assert log_end(tmp_path / "missing.log", 4) == (b"", 0)
