"""Resident memory of this process, and a peak that can be restarted (Linux)."""
from __future__ import annotations

import ctypes
import gc
from pathlib import Path


def memory_mib() -> dict[str, float]:
    """This process's resident memory now and its peak since the last `reset_peak` (Linux)."""
    status = Path("/proc/self/status").read_text()
    return {key: int(next(line.split()[1] for line in status.splitlines() if line.startswith(key + ":"))) / 1024
            for key in ("VmRSS", "VmHWM")}


def reset_peak() -> None:
    """Start the peak (VmHWM) again from the resident size now, so it measures what follows alone.

    Freed heap goes back to the system first (glibc's malloc_trim): otherwise what
    follows could reuse memory start-up freed, and its own cost would not show.
    """
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
