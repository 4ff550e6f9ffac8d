"""Private files on disk: the SQLite database, recordings and identity uploads.

Each lives in a directory only the service's user may enter (0700) and is
readable by that user alone (0600), whatever the process's umask.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Make ``path`` and close it to everyone but its owner. Parents it has to create
    are made 0700 as well (``mkdir(parents=True)`` would leave them to the umask)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 inside a private directory (an existing
    file keeps its content and is closed to others)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return path
