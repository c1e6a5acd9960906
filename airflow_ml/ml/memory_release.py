"""Hand the memory a task has freed back to the operating system, where the C library can (glibc's ``malloc_trim``).

glibc keeps what numpy, pandas and LightGBM free in its heaps for reuse, and each time it unmaps a large block
it raises the size under which it serves blocks from those heaps (its dynamic mmap threshold, up to 32 MiB).
After a training on 1M rows, some 40 MB freed by the training stayed resident, and the steps after it (the
scores, the lineage file, the charts, the model's logging) grew the process further instead of reusing them.
A worker's memory limit counts resident memory, so training hands them back once the booster is built.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable


def release_free_memory() -> bool:
    """Return the free pages of the process's C heaps to the operating system.

    A few milliseconds; nothing in use is touched, and a later allocation simply gets fresh pages.

    Returns:
        False where the C library offers no way to (not Linux, or a C library without ``malloc_trim``).
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim  # glibc; musl has none
    except (OSError, AttributeError):
        return None
    return trim
