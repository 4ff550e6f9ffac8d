"""Giving memory back after a room closes.

A closed room's peer connections, tracks and recorders hold each other in cycles
(aiortc's event handlers), so they go at the next garbage collection, not when the
room closes. Once they are gone, glibc keeps the freed memory in the arenas of the
threads that used it (the media thread, aiortc's per-track threads) unless asked
to return it: ``malloc_trim``. Without it a long-lived server's RSS rises with
every visit towards a plateau several hundred MB up (benchmarks/soak.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

_trim: Callable[[int], int] | None
try:
    _trim = ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
except (OSError, AttributeError, TypeError):  # not glibc: nothing to ask
    _trim = None


def give_back() -> bool:
    """Collect unreachable cycles, then return free heap pages to the system; False if
    this C library can't be asked (not glibc)."""
    gc.collect()
    if _trim is None:
        return False
    _trim(0)
    return True
