"""The bot's process keeps to two malloc arenas however many threads allocate at once."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from clmbot.memory import fewer_malloc_arenas

# Threads that allocate at the same moment, then the arenas glibc made (malloc_info's XML
# has a <heap nr=…> per arena).
PROBE = r"""
import ctypes, ctypes.util, sys, tempfile, threading
from clmbot.memory import fewer_malloc_arenas
if sys.argv[1] == "fewer":
    assert fewer_malloc_arenas()
go = threading.Barrier(12)
def churn():
    go.wait()
    for _ in range(3000):
        kept = [bytearray(4096) for _ in range(20)]
        del kept
threads = [threading.Thread(target=churn) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile("r") as out:
    fp = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(fp))
    libc.fclose(ctypes.c_void_p(fp))
    print(out.read().count("<heap nr="))
"""


def arenas(how: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, how], capture_output=True, text=True, env=env, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's arenas"
)
def test_threads_allocating_at_once_share_two_arenas() -> None:
    assert arenas("fewer") <= 2
    assert arenas("as-is") > 2  # the probe makes more when left alone


def test_an_arena_count_chosen_in_the_environment_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert fewer_malloc_arenas() is False
