"""Where the machine's CPU went during a run: cardcore, PostgreSQL, the generator, the rest.

Server, database and generator share the CPUs, so this is what shows which one a run was bound
by, and how much a stray process (a test suite, say) took from them. Linux /proc only.
"""

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # up to steal; guest time is already in user
    return (total - idle) / TICK, total / TICK


def _processes() -> dict[int, tuple[int, int, float]]:
    """pid -> (parent pid, process group, CPU seconds)."""
    found: dict[int, tuple[int, int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields start after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = (
            int(fields[1]),
            int(fields[2]),
            (int(fields[11]) + int(fields[12])) / TICK,
        )
    return found


def _children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Snapshot:
    at: float
    machine_busy: float
    machine_total: float
    # pid -> CPU seconds, for the processes of each side.
    server: dict[int, float]
    postgres: dict[int, float]
    children: float
    me: float


class CpuMeter:
    """`server_group`: the process group of `cardcore serve`; `postmaster`: the embedded
    PostgreSQL's main process (None for --database-url: its CPU is then in "other")."""

    def __init__(self, server_group: int, postmaster: int | None) -> None:
        self.server_group = server_group
        self.postmaster = postmaster

    def snapshot(self) -> Snapshot:
        processes = _processes()
        server = {
            pid: cpu for pid, (_, group, cpu) in processes.items() if group == self.server_group
        }
        postgres = {
            pid: cpu
            for pid, (parent, _, cpu) in processes.items()
            if self.postmaster is not None and self.postmaster in (pid, parent)
        }
        busy, total = _machine()
        return Snapshot(time.monotonic(), busy, total, server, postgres, _children(), _self())


@dataclass
class CpuUse:
    """Average CPUs busy over an interval (2.0 = both of two CPUs all the time)."""

    cpus: int
    server: float
    postgres: float
    generator: float
    other: float

    def describe(self) -> str:
        return (
            f"server {self.server:.2f}, postgres {self.postgres:.2f}, "
            f"generator {self.generator:.2f}, other {self.other:.2f}"
        )


def _grown(before: dict[int, float], after: dict[int, float]) -> float:
    # Processes that lived through the interval; one that started or ended in it (a pooled
    # connection opened or closed) is left to "other".
    return sum(after[pid] - before[pid] for pid in after.keys() & before.keys())


def between(before: Snapshot, after: Snapshot) -> CpuUse:
    """The generator is the bench's child process that ran (and was reaped) in between."""
    seconds = after.at - before.at
    cpus = os.cpu_count() or 1
    # /proc/stat counts every CPU: scale its total to wall-clock seconds.
    scale = seconds * cpus / max(after.machine_total - before.machine_total, 1e-9)
    busy = (after.machine_busy - before.machine_busy) * scale
    server = _grown(before.server, after.server)
    postgres = _grown(before.postgres, after.postgres)
    generator = after.children - before.children
    bench = after.me - before.me
    other = max(0.0, busy - server - postgres - generator - bench)
    return CpuUse(
        cpus=cpus,
        server=server / seconds,
        postgres=postgres / seconds,
        generator=generator / seconds,
        other=other / seconds,
    )
