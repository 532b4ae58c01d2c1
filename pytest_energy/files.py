"""The one way pytest-energy writes a file: atomically, with the user's umask; and the one way it reads the
JSON files it keeps (baselines, the stored HULK reference): strictly.

Readers (a later run, a CI step, git) see the old file or the new one, never half of either, even if the
process is killed half-way. Baselines and every report go through `write_atomic`.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from .errors import EnergyError


def write_atomic(path: str | os.PathLike[str], text: str, *, error: type[EnergyError] = EnergyError,
                 what: str = "file") -> Path:
    """Write `text` (UTF-8) to `path` via a temporary file in the same folder, fsync it, then os.replace.

    The folder must exist. The temporary file is removed on any failure, Ctrl-C included. Failures raise
    `error` naming `what` and the path.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # 0o666 and the umask decide the mode, as for any file the user creates (typically 0644).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise error(f"cannot write {what} {path}: {exc}") from exc
        raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not possible on every platform, so best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_json(path: str | os.PathLike[str], *, what: str, repair: str,
              error: type[EnergyError] = EnergyError) -> Any:
    """The JSON document in `path`, read strictly: UTF-8, standard JSON only (no NaN or Infinity), no key
    twice in one object (a hand-merged file would silently keep the last value). Anything else raises `error`
    naming `what`, the path and `repair` (what the user should do). A missing file raises FileNotFoundError,
    which callers turn into "nothing stored yet"."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise  # not an OSError to report: the caller's "nothing stored yet"
    except OSError as exc:
        raise error(f"{what} {path}: cannot be read: {exc}") from exc
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                          object_pairs_hook=_reject_duplicate_keys)
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path}: not UTF-8 text ({exc}); {repair}") from None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError; so is a NaN/Infinity constant
        hint = " (truncated?)" if not raw.rstrip().endswith(b"}") else ""  # both files hold one object
        raise error(f"{what} {path}: not valid JSON{hint}: {exc}; {repair}") from None


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
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
