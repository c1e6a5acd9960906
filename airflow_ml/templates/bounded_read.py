"""Read a YAML or JSON file of the templates or expectations folders only if it is a regular file of bounded size.

A FIFO's open waits for a writer forever and a link to ``/dev/zero`` never ends: one such file in ``cities/`` would
hang or fill every DAG file that reads the fleet. So a file is opened without blocking, checked on the open
descriptor (a FIFO swapped in after a check cannot hang the open either), and read up to a bound.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from airflow_ml.exceptions import Problem

#: The most bytes a layer file may hold: a template, group or city file is a few kilobytes, so this bounds what a
#: mistaken or hostile file can make a DAG file read (suites, which may list many values, have their own bound).
MAX_YAML_BYTES = 1024 * 1024


class UnreadableFile(ValueError):
    """The file is not a regular file, or holds more than its bound: it is not read.

    Args:
        problems: What is wrong and the fix.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def read_bounded(path: Path, max_bytes: int = MAX_YAML_BYTES) -> bytes:
    """The bytes of ``path``, a regular file of at most ``max_bytes``.

    Raises:
        UnreadableFile: for a FIFO, a directory, a device or a socket (links followed), or a larger file; the
            problem names the file and the fix.
        OSError: as a plain read would (a missing file, no permission).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode) else "a device or socket"
            problem = (
                f"{path.name} is {kind}, not a regular file, so it is not read (a read could wait forever or "
                "never end): replace it with a regular file, or remove it"
            )
            raise UnreadableFile([Problem(problem)])
        handle = os.fdopen(fd, "rb")  # owns the descriptor from here
    except BaseException:
        os.close(fd)
        raise
    with handle:
        data = handle.read(max_bytes + 1)  # the size may change after the open
    if len(data) > max_bytes:
        problem = (
            f"{path.name} holds more than {max_bytes:,} bytes, so it is not read: a template, group or city file "
            "is a few kilobytes and a suite rarely a few hundred; split it, or remove what does not belong in it"
        )
        raise UnreadableFile([Problem(problem)])
    return data
