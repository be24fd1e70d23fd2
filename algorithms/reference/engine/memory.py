"""Keeping the engine's resident memory flat over a long run.

What grew in long runs was not Python objects (tracemalloc snapshots and gc
object counts stay flat over minutes of analysis, and a deleted task leaves no
object behind) but glibc's heap. Decoding and detection allocate and free
megabyte buffers (a 1080p BGR frame is 6 MB; the resized copy, HOG's
per-scale buffers, JPEG snapshots) from several threads: each task's decode
and analysis threads and one thread per HTTP request. glibc gives threads
arenas of their own (up to 8 per core) and keeps the free space of each, so
every new thread and task could leave more retained memory behind: RSS crept
up long after the working set had stopped growing (bench/bench_engine_memory.py;
docs/reference-algorithm.md has the figures).

So, with glibc (elsewhere these are no-ops):

* ``limit_arenas``: at start, before our threads allocate, cap the number of
  arenas (ENGINE_MALLOC_ARENAS, default 2). Measured: no CPU cost here; one
  process restarting tasks on a 1080p clip stayed at 87-97 MB instead of
  134-140 MB.
* ``trim``: every ENGINE_MALLOC_TRIM_S seconds (default 30) the main loop
  hands free heap pages back to the kernel (``malloc_trim(0)``, milliseconds).

A fixed, low mmap threshold (frame-sized blocks mapped on their own) also
keeps the heap unfragmented, but cost about 15% more CPU (page faults on
every fresh buffer), so it is not used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger("engine.memory")

M_ARENA_MAX = -8  # mallopt() parameter (malloc.h)

_libc: ctypes.CDLL | None = None
_loaded = False


def _glibc() -> ctypes.CDLL | None:
    global _libc, _loaded
    if not _loaded:
        _loaded = True
        if platform.libc_ver()[0] == "glibc":
            try:
                _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            except OSError:
                _libc = None
    return _libc


def limit_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas (0: leave the default). True when applied."""
    libc = _glibc()
    if libc is None or arenas <= 0:
        return False
    if not libc.mallopt(M_ARENA_MAX, arenas):
        log.warning("mallopt refused M_ARENA_MAX=%d", arenas)
        return False
    return True


def trim() -> bool:
    """Give free heap memory back to the kernel; True when some was."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
