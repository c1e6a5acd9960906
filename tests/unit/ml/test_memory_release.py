"""Unit tests of handing freed memory back to the operating system (airflow_ml.ml.memory_release)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from airflow_ml.ml.memory_release import release_free_memory

STATUS = Path("/proc/self/status")


def resident_mb() -> float:
    """This process's resident set now (``VmRSS``), in MB."""
    line = next(line for line in STATUS.read_text(encoding="utf-8").splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def foreign_malloc() -> str | None:
    """Where this process's ``malloc`` comes from when it is not glibc's (an ``LD_PRELOAD``ed jemalloc or tcmalloc,
    say), else None: glibc's ``malloc_trim`` then exists but frees nothing of the heap Python uses."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return "a C library other than glibc"
    used, glibcs = (ctypes.cast(lib.malloc, ctypes.c_void_p).value for lib in (ctypes.CDLL(None), libc))
    if used == glibcs:
        return None
    return f"a malloc other than glibc's (LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r})"


@pytest.mark.skipif(not STATUS.exists(), reason="reads the resident set from /proc (Linux)")
def test_memory_freed_inside_the_heap_goes_back_to_the_operating_system() -> None:
    if (other := foreign_malloc()) is not None:
        pytest.skip(f"malloc_trim trims glibc's heap only, and this process uses {other}")
    # 50 MB of blocks small enough for glibc's heap, all freed but the last: free memory below a block in use,
    # which glibc keeps resident (it gives back only what is free at the heap's top).
    blocks = [b"\x01" * 65_536 for _ in range(800)]
    last = blocks[-1]
    del blocks
    kept = resident_mb()

    released = release_free_memory()

    if not released:
        pytest.skip("this C library has no malloc_trim")
    assert kept - resident_mb() > 25
    assert last[:1] == b"\x01"  # the block in use is untouched
