"""CPU seconds of other processes (a server, workers) from Linux's /proc."""
from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User and system CPU seconds of `pid` so far, with `reaped_children` also those of
    the children it has waited for (an RQ worker's horses); 0.0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime, stime, cutime, cstime: fields 14-17 of stat(5), counted after the name
    used = fields[11:15] if reaped_children else fields[11:13]
    return sum(int(value) for value in used) / os.sysconf("SC_CLK_TCK")
