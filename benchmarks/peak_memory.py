"""A benchmark child's own memory, read inside it from ``/proc/self/status``: its peak and its current size.

Not ``resource.getrusage(...).ru_maxrss``, neither ``RUSAGE_CHILDREN`` in the parent nor ``RUSAGE_SELF`` in the
child: on Linux a process started by ``fork``/``vfork`` then ``exec`` inherits the parent's peak in it, so a
parent that wrote a large world makes every child look as large. ``VmHWM`` is the peak of the process's own
address space since its ``exec``.
"""

from __future__ import annotations

from pathlib import Path

STATUS = Path("/proc/self/status")


def peak_rss_mb() -> float:
    """This process's own peak resident set (``VmHWM``) in MB; ``ru_maxrss`` where ``/proc`` is missing."""
    found = _status("VmHWM")
    if found is not None:
        return found
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident set now (``VmRSS``) in MB; 0 where ``/proc`` is missing."""
    return _status("VmRSS") or 0.0


def reset_peak() -> bool:
    """Start the peak over from the current size (Linux 4.0+: ``5`` into ``clear_refs``); False where it cannot.

    A benchmark resets it after its imports, so that the peak it reads next is that of the work alone, not of
    a transient allocation while importing.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def _status(field: str) -> float | None:
    try:
        status = STATUS.read_text(encoding="utf-8")
    except OSError:
        return None
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith(f"{field}:")), None)
