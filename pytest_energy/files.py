"""The one way pytest-energy writes a file: atomically, with the user's umask.

Readers (a later run, a CI step, git) see the old file or the new one, never half of either, even if the
process is killed half-way. Baselines and every report go through `write_atomic`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

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
