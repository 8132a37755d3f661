"""How the bot's process asks the C allocator to keep its memory.

glibc gives threads that allocate at the same moment arenas of their own, up to eight per
core, and a freed block goes back to the arena it came from. The bot serves each request on
one of dozens of threads, and SQLite's page caches and the answers' buffers are allocated
by whichever thread is running: every arena ends up holding free pieces the others cannot
use. Under bench_load (200 commands a second, two processes) each process grew 25-50 MB
over two and a half minutes and kept growing; with two arenas it grew 5 MB and stayed flat,
at the same speed (p99 0.28 s, no errors).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def fewer_malloc_arenas(count: int = ARENAS) -> bool:
    """At most `count` malloc arenas for the threads started after this; a no-op (False)
    where the C library is not glibc, or `MALLOC_ARENA_MAX` in the environment chose."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except (OSError, TypeError):
        return False
    # glibc only: mallopt's numbers are its own.
    if not (hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")):
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, count))
