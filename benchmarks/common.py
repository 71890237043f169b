"""Helpers shared by the benchmark processes."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces: the fields start after the last ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (from /proc/PID/statm)."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cpu_busy_seconds(cpus: set[int]) -> float:
    """CPU seconds that processes (or, as steal, other machines) took on ``cpus`` since boot.

    From /proc/stat: user + nice + system + steal.  Interrupt and softirq time is left
    out: it is mostly the loopback traffic of the benchmark itself, charged to no process.
    """
    busy = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                user, nice, system, _idle, _iowait, _irq, _softirq, steal = map(int, fields[:8])
                busy += user + nice + system + steal
    return busy / CLK_TCK


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


class NoCompilerError(RuntimeError):
    """There is no C compiler (``cc`` or ``gcc``) on PATH."""


def build_c(source: str, workdir: str | Path) -> str:
    """Compile ``benchmarks/<source>`` with ``cc -O2`` into ``workdir``; the executable's path.

    The compiled load generators are built by each run, never committed.
    """
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise NoCompilerError(f"a C compiler (cc) is needed to build {source}")
    exe = str(Path(workdir) / Path(source).stem)
    subprocess.run([cc, "-O2", "-o", exe, str(HERE / source)], check=True)
    return exe
