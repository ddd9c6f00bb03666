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


@dataclass(frozen=True)
class Process:
    parent: int
    group: int
    cpu: float  # its own CPU seconds (user + system)
    reaped: float  # CPU seconds of the children it has waited for, theirs in full


# A process is its pid and its start time: a pid reused within a run is another process.
Key = tuple[int, int]


def _processes() -> dict[Key, Process]:
    found: dict[Key, Process] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields start after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        found[(int(entry.name), int(fields[19]))] = Process(
            parent=int(fields[1]),
            group=int(fields[2]),
            cpu=(int(fields[11]) + int(fields[12])) / TICK,
            reaped=(int(fields[13]) + int(fields[14])) / TICK,
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
    # The processes of each side.
    server: dict[Key, Process]
    postgres: dict[Key, Process]
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
        server = {key: p for key, p in processes.items() if p.group == self.server_group}
        postgres = {
            key: p
            for key, p in processes.items()
            if self.postmaster is not None and self.postmaster in (key[0], p.parent)
        }
        busy, total = _machine()
        return Snapshot(time.monotonic(), busy, total, server, postgres, _children(), _self())


@dataclass
class PerRequest:
    """CPU milliseconds per request answered in a run, of the server and of PostgreSQL."""

    requests: int
    server_ms: float
    postgres_ms: float

    def describe(self) -> str:
        return f"server {self.server_ms:.2f} ms, postgres {self.postgres_ms:.2f} ms"


@dataclass
class CpuUse:
    """Average CPUs busy over an interval (2.0 = both of two CPUs all the time), `seconds`
    long."""

    cpus: int
    server: float
    postgres: float
    generator: float
    other: float
    seconds: float

    def per_request(self, requests: int) -> PerRequest:
        """CPU seconds over the interval (not a rate times some other duration) ÷ requests."""

        def ms(busy: float) -> float:
            return busy * self.seconds * 1000 / requests if requests else 0.0

        return PerRequest(requests, ms(self.server), ms(self.postgres))

    def describe(self) -> str:
        return (
            f"server {self.server:.2f}, postgres {self.postgres:.2f}, "
            f"generator {self.generator:.2f}, other {self.other:.2f}"
        )


def _grown(before: dict[Key, Process], after: dict[Key, Process]) -> float:
    """The CPU seconds one side's processes used in between. Pooled connections come and go
    under load (the pool's overflow), so PostgreSQL backends start and end inside a run: one
    that started counts whole; one that ended is counted through what its parent (on the same
    side, as the postmaster is for its backends) reaped, less what it had used before."""
    used = 0.0
    for key, now in after.items():
        then = before.get(key)
        if then is None:
            used += now.cpu
        else:
            used += now.cpu - then.cpu + now.reaped - then.reaped
    living = {pid for pid, _ in after.keys() & before.keys()}
    for key, then in before.items():
        if key not in after and then.parent in living:
            used -= then.cpu + then.reaped
    return used


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
        seconds=seconds,
    )
