"""Keep a long-running, many-threaded process (the edge agent) from holding memory it no longer uses.

glibc's malloc gives each thread that allocates its own arena (up to 8 per core), and it raises its mmap
threshold after the first large block is freed, so later large blocks come from those arenas and stay there.
An agent with two threads per camera measured 94 MiB PSS at 8 cameras, 78 MiB with two arenas and a fixed
threshold (bench/record_bench.py). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("jifang.memory")

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024  # glibc's default, made fixed: blocks above it are mapped and returned on free


def limit_malloc_arenas() -> bool:
    """Cap malloc arenas and fix the mmap threshold; call before starting threads. False where not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(M_ARENA_MAX, ARENAS) == 1 and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    if not done:
        log.debug("mallopt refused the arena or threshold setting; malloc keeps its defaults")
    return done
