"""Private files on disk: the SQLite database, recordings and identity uploads.

Each lives in a directory only the service's user may enter (0700) and is
readable by that user alone (0600), whatever the process's umask.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Make ``path`` and close it to everyone but its owner. Parents it has to create
    are made 0700 as well (``mkdir(parents=True)`` would leave them to the umask)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        _restrict(directory, DIR_MODE)
    _restrict(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 inside a private directory (an existing
    file keeps its content and is closed to others)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    _restrict(path, FILE_MODE)
    return path


def _restrict(path: Path, mode: int) -> None:
    """chmod ``path``; a path this user doesn't own (a directory an operator prepared)
    is left as it is, with a warning."""
    if stat.S_IMODE(path.stat().st_mode) == mode:
        return
    try:
        os.chmod(path, mode)
    except PermissionError:
        log.warning(
            "%s is mode %o and not ours to change; it should be %o",
            path,
            stat.S_IMODE(path.stat().st_mode),
            mode,
        )
