"""The one way pytest-energy writes a file: atomically, with the user's umask; the one way it writes several
files as one unit (all or none, `write_group`); and the one way it reads the JSON files it keeps (baselines,
the stored HULK reference): strictly, as untrusted input.

Readers (a later run, a CI step, git) see the old file or the new one, never half of either, even if the
process is killed half-way. Baselines and every report go through `write_atomic` or `write_group`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from .errors import EnergyError

# Test hook (tests/test_files.py, tests/gate/test_baselines.py): with this variable set to k, the process
# SIGKILLs itself just before its k-th filesystem step (create, write, fsync, rename, unlink), counted from
# when the variable was set; that is how "killed at any point" is tested. Unset, it costs one dict lookup.
KILL_AT_STEP_ENV = "PYTEST_ENERGY_TEST_KILL_AT_STEP"
_steps_taken = [0]


def _step() -> None:
    kill_at = os.environ.get(KILL_AT_STEP_ENV)
    if kill_at is None:
        return
    _steps_taken[0] += 1
    if _steps_taken[0] >= int(kill_at):
        os.kill(os.getpid(), signal.SIGKILL)


def _write_temporary(path: Path, text: str) -> Path:
    """`text` in a new temporary file beside `path`, flushed to disk; removed again on any failure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _step()
        # 0o666 and the umask decide the mode, as for any file the user creates (typically 0644).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            _step()
            f.write(text)
            f.flush()
            _step()
            os.fsync(f.fileno())
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def write_atomic(path: str | os.PathLike[str], text: str, *, error: type[EnergyError] = EnergyError,
                 what: str = "file") -> Path:
    """Write `text` (UTF-8) to `path` via a temporary file in the same folder, fsync it, then os.replace.

    The folder must exist. The temporary file is removed on any failure, Ctrl-C included. Failures raise
    `error` naming `what` and the path.
    """
    path = Path(path)
    tmp = None
    try:
        tmp = _write_temporary(path, text)
        _step()
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            _unlink_quietly(tmp)
        if isinstance(exc, OSError):
            raise error(f"cannot write {what} {path}: {exc}") from exc
        raise
    _fsync_directory(path.parent)
    return path


# --- several files, all or none ---------------------------------------------------------------------------
#
# 1. every new file is written to a temporary beside it and fsynced (a kill here: no journal, so the next
#    recovery deletes nothing it needs and the stale temporaries are removed: the group never happened);
# 2. the journal (JSON: the renames, temporary -> file) is written atomically: its rename is the commit point;
# 3. each temporary is renamed over its file;
# 4. the journal is removed.
# A kill after 2 leaves the journal: `recover_group` redoes the renames whose temporary is still there (the
# others were done), so the group happens whole. `pending_group` lets a reader that may not write see the
# group as finished without touching anything.

_JOURNAL_VERSION = 1
_TEMPORARY_NAME = re.compile(r"\A\..+\.(\d+)\.[0-9a-f]{8}\.tmp\Z")  # _write_temporary's names


def write_group(texts: Mapping[Path, str], journal: Path, *, error: type[EnergyError] = EnergyError,
                what: str = "file") -> list[Path]:
    """Write every `texts[path]` so that, even after kill -9 at any point, either all files hold their new
    text or none does, once `recover_group(journal)` has run (or readers use `pending_group(journal)`).

    Every path must be in the journal's folder, and one group at a time may use a journal: callers hold a
    lock. Failures before the commit point remove the temporaries and raise `error`; nothing is changed.
    """
    paths = [Path(p) for p in texts]
    if any(p.parent != journal.parent for p in paths):
        raise ValueError("write_group: every file must be in the journal's folder")
    if not paths:
        return []
    temporaries: list[Path] = []
    current = journal
    try:
        for current in paths:
            temporaries.append(_write_temporary(current, texts[current]))
        current = journal
        record = {"version": _JOURNAL_VERSION,
                  "renames": [[tmp.name, path.name] for tmp, path in zip(temporaries, paths)]}
        write_atomic(journal, json.dumps(record, indent=1) + "\n")
    except BaseException as exc:
        for tmp in temporaries:
            _unlink_quietly(tmp)
        if isinstance(exc, EnergyError) and isinstance(exc.__cause__, OSError):
            exc = exc.__cause__
        if isinstance(exc, OSError):
            raise error(f"cannot write {what} {current}: {exc}; none of the {len(paths)} file(s) was changed") \
                from exc
        raise
    # Committed: from here on, an error leaves the journal for the next recovery to finish.
    try:
        _finish(journal, list(zip(temporaries, paths)))
    except OSError as exc:
        raise error(f"cannot finish writing {what}s in {journal.parent}: {exc}; the next save or load "
                    f"completes it ({journal.name})") from exc
    return paths


def _finish(journal: Path, renames: list[tuple[Path, Path]]) -> None:
    for tmp, path in renames:
        _step()
        try:
            os.replace(tmp, path)
        except FileNotFoundError:
            if not path.exists():
                raise
            # renamed already, before an interruption
    _fsync_directory(journal.parent)
    _step()
    journal.unlink()
    _fsync_directory(journal.parent)


def _journal_renames(journal: Path, error: type[EnergyError],
                     hidden: Collection[str] = ()) -> list[tuple[Path, Path]] | None:
    """The renames a journal names (None: no journal). A journal we cannot read raises `error`. A rename onto a
    hidden name is refused (a crafted journal must not replace the journal itself or another dotfile), except
    onto the names in `hidden` (the baselines' pool cache)."""
    try:
        with open(journal, "rb") as f:
            raw = f.read(1 << 20)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error(f"cannot read the journal of an interrupted save {journal}: {exc}") from exc
    try:
        record = json.loads(raw.decode("utf-8"))
        if record.get("version") != _JOURNAL_VERSION:
            raise ValueError(f"version {record.get('version')!r}")
        renames = []
        for tmp, name in record["renames"]:
            if not (isinstance(tmp, str) and isinstance(name, str) and _TEMPORARY_NAME.match(tmp)
                    and tmp.startswith(f".{name}.") and "/" not in name and "\\" not in name
                    and (name[:1] != "." or name in hidden)):
                raise ValueError(f"rename {tmp!r} -> {name!r}")
            renames.append((journal.parent / tmp, journal.parent / name))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise error(f"the journal of an interrupted save {journal} is damaged ({exc}): the files it names may "
                    "be partly updated; check them, then delete the journal") from None
    return renames


def recover_group(journal: Path, *, error: type[EnergyError] = EnergyError, hidden: Collection[str] = ()) -> bool:
    """Finish the group write that `journal` records, if one was interrupted after its commit point (see
    write_group); True when there was one. Callers hold the lock that serialises group writes. `hidden`: the
    dotfiles the group may write."""
    renames = _journal_renames(journal, error, hidden)
    if renames is None:
        return False
    try:
        _finish(journal, renames)
    except OSError as exc:
        raise error(f"cannot finish an interrupted save recorded in {journal}: {exc}") from exc
    return True


def pending_group(journal: Path, *, error: type[EnergyError] = EnergyError,
                  hidden: Collection[str] = ()) -> dict[Path, Path]:
    """For a reader that does not write: file -> the temporary that holds its committed new text, for every
    rename an interrupted group write (see write_group) has not done yet. Empty when there is no journal."""
    renames = _journal_renames(journal, error, hidden)
    return {path: tmp for tmp, path in renames or () if tmp.exists()}


def is_temporary(name: str) -> int | None:
    """The pid in a temporary file name of ours (`write_atomic`, `write_group`), or None."""
    match = _TEMPORARY_NAME.match(name)
    return int(match.group(1)) if match else None


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not possible on every platform, so best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        _step()
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- reading --------------------------------------------------------------------------------------------------

_CONFLICT_MARKER = re.compile(rb"^(?:<{7}|={7}|>{7})(?: |\r?$)", re.MULTILINE)


def read_json(path: str | os.PathLike[str], *, what: str, repair: str,
              error: type[EnergyError] = EnergyError, max_bytes: int | None = None,
              conflict_hint: str | None = None, source: str | os.PathLike[str] | None = None) -> Any:
    """The JSON document in `path`, read strictly and as untrusted input: a regular file of at most
    `max_bytes` (never read whole to be refused), UTF-8, standard JSON only (no NaN or Infinity), no key twice
    in one object (a hand-merged file would silently keep the last value), nested no deeper than Python
    can parse. Anything else raises `error` naming `what`, the path and `repair` (what the user should do);
    a file holding git's conflict markers says so, with `conflict_hint`. A missing file raises
    FileNotFoundError, which callers turn into "nothing stored yet". `source`: read that file instead, still
    naming `path` (a committed-but-unrenamed new version, files.pending_group). The two halves, `read_bytes`
    and `parse_json`, let a caller hash the bytes before deciding to parse them (gate/pool_cache.py)."""
    raw = read_bytes(path, what=what, repair=repair, error=error, max_bytes=max_bytes, source=source)
    return parse_json(raw, path, what=what, repair=repair, error=error, conflict_hint=conflict_hint)


def read_bytes(path: str | os.PathLike[str], *, what: str, repair: str, error: type[EnergyError] = EnergyError,
               max_bytes: int | None = None, source: str | os.PathLike[str] | None = None) -> bytes:
    """The bytes of the regular file `path` (or `source`, still naming `path`), at most `max_bytes` of them;
    read_json's checks before parsing. FileNotFoundError when it does not exist."""
    path = Path(path)
    try:
        # O_NONBLOCK: a FIFO planted under a baseline's name must not hang the run; it is refused below.
        fd = os.open(source if source is not None else path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise  # not an OSError to report: the caller's "nothing stored yet"
    except OSError as exc:
        raise error(f"{what} {path}: cannot be read: {exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{what} {path}: not a regular file; {repair}")
        if max_bytes is not None and info.st_size > max_bytes:
            raise error(f"{what} {path}: {info.st_size:,} bytes, more than the {max_bytes:,} a {what} may hold "
                        f"(not read); {repair}")
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{what} {path}: cannot be read: {exc}") from exc
    finally:
        os.close(fd)
    if max_bytes is not None and len(raw) > max_bytes:  # it grew while we looked
        raise error(f"{what} {path}: more than the {max_bytes:,} bytes a {what} may hold (not read); {repair}")
    return raw


def parse_json(raw: bytes, path: str | os.PathLike[str], *, what: str, repair: str,
               error: type[EnergyError] = EnergyError, conflict_hint: str | None = None) -> Any:
    """`raw` (the bytes of `path`) parsed as read_json parses: strictly, errors naming `what` and `path`."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                          object_pairs_hook=_reject_duplicate_keys)
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text ({exc})"
    except RecursionError:
        problem = "nested too deeply to be a file pytest-energy wrote"
    except ValueError as exc:  # json.JSONDecodeError is a ValueError; so is a NaN/Infinity constant
        hint = " (truncated?)" if not raw.rstrip().endswith(b"}") else ""  # both files hold one object
        problem = f"not valid JSON{hint}: {exc}"
    if _CONFLICT_MARKER.search(raw):
        raise error(f"{what} {path}: holds git conflict markers (<<<<<<<, =======, >>>>>>>): two branches changed "
                    f"it and git merged it as text; {conflict_hint or repair}")
    raise error(f"{what} {path}: {problem}; {repair}")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):  # rare: only then look for the key, so the common case stays in C
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key {key!r} appears twice in one object")
            seen.add(key)
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def folder_problem(folder: Path, what: str, create: bool) -> str | None:
    """Why files cannot be written into `folder` (created when `create`); None when they can. Checked at start-up
    by every layer that writes at the end (report files, the baseline folder), so a run never ends by losing
    what it measured."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        return f"{what}: {existing} is a file, not a folder"
    if existing != folder and not create:
        return f"{what}: the folder {folder} does not exist"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{what}: no permission to write in {existing}"
    return None
