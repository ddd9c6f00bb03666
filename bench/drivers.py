"""The load generators and pgbench, each run as a process of its own, and what they report."""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WRK_DIR = Path(__file__).with_name("wrk")
# The mixed run's kinds of message (bench/wrk/mixed.lua, bench.loadgen --mode mixed).
MIXED_KINDS = ("authorization", "clearing", "reversal", "increment")


@dataclass
class LoadResult:
    generator: str
    requests: int
    duration_s: float
    approved: int
    declined: int
    http_errors: int
    connect_errors: int
    read_errors: int
    write_errors: int
    timeouts: int
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    # Mixed runs: per kind of message (authorization, clearing, reversal, increment), how many
    # were approved, declined, and answered with an HTTP error. Timeouts and socket errors
    # cannot always be told apart by kind: they are in the totals only.
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)

    def by_kind(self) -> list[tuple[str, dict[str, int]]]:
        """`kinds` in the order messages go: the authorization, then its follow-ups."""
        order = {kind: n for n, kind in enumerate(MIXED_KINDS)}
        return sorted(self.kinds.items(), key=lambda item: order.get(item[0], len(order)))

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def approved_rps(self) -> float:
        return self.approved / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return (
            self.http_errors
            + self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.timeouts
        )


def _result(generator: str, output: str, stderr: str) -> LoadResult:
    for line in output.splitlines():
        if line.startswith("BENCH-RESULT "):
            fields: dict[str, Any] = json.loads(line.removeprefix("BENCH-RESULT "))
            return LoadResult(generator=generator, **fields)
    raise RuntimeError(f"{generator} reported nothing:\n{output[-2000:]}\n{stderr[-2000:]}")


def ensure_wrk(install: bool) -> str | None:
    """wrk's path; installed from the Debian archive when missing and allowed (root only)."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("bench: wrk is missing; installing it with apt-get", flush=True)
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"bench: {' '.join(command)} failed; using bench.loadgen", flush=True)
            return None
    return shutil.which("wrk")


def run_wrk(
    wrk: str,
    url: str,
    script: str,
    script_args: list[str],
    *,
    concurrency: int,
    duration: float,
    threads: int,
) -> LoadResult:
    command = [
        wrk,
        f"-t{min(threads, concurrency)}",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_DIR / script),
        url,
    ]
    if script_args:
        command += ["--", *script_args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return _result("wrk", done.stdout, done.stderr)


def run_loadgen(
    port: int,
    *,
    mode: str,
    concurrency: int,
    duration: float,
    rate: float | None = None,
    key: str = "",
    card_head: str = "",
    cards: int = 1,
    tag: str = "gen",
) -> LoadResult:
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        f"--port={port}",
        f"--mode={mode}",
        f"--concurrency={concurrency}",
        f"--duration={duration}",
        f"--key={key}",
        f"--card-head={card_head}",
        f"--cards={cards}",
        f"--tag={tag}",
    ]
    if rate:
        command.append(f"--rate={rate}")
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    return _result("bench.loadgen", done.stdout, done.stderr)


@dataclass
class PgbenchResult:
    binary: str
    tps: float
    transactions: int
    failed: int
    latency_avg_ms: float
    p50_ms: float
    p99_ms: float
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and self.transactions > 0

    def slowest(self, count: int = 3) -> list[tuple[float, str]]:
        """The statements with the highest average latency (pgbench -r)."""
        found: list[tuple[float, str]] = []
        inside = False
        for line in self.output.splitlines():
            if line.startswith("statement latencies"):
                inside = True
                continue
            match = re.match(r"^\s+([\d.]+)\s+(?:\d+\s+)?(\S.*)$", line) if inside else None
            if match:
                found.append((float(match[1]), match[2]))
            elif inside and found:
                break
        return sorted(found, reverse=True)[:count]


def run_pgbench(
    binary: str,
    dsn: str,
    script: Path,
    defines: dict[str, str],
    *,
    concurrency: int,
    duration: float,
    work_dir: Path,
) -> PgbenchResult:
    logs = work_dir / "pgbench-log"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    command = [
        binary,
        "-n",  # no VACUUM of pgbench's own tables: the script uses cardcore's
        "-M",
        "prepared",
        f"-c{concurrency}",
        "-j2",
        f"-T{max(1, round(duration))}",
        "-r",
        "-l",
        f"--log-prefix={logs / 'tx'}",
        "-f",
        str(script),
    ]
    for name, value in sorted(defines.items()):
        command += ["-D", f"{name}={value}"]
    command.append(dsn)
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=work_dir)
    output = done.stdout + done.stderr

    def number(pattern: str) -> float:
        match = re.search(pattern, output)
        return float(match[1]) if match else 0.0

    # Per-transaction log lines: client, transaction, latency in microseconds, ...
    latencies = sorted(
        int(line.split()[2])
        for path in logs.iterdir()
        for line in path.read_text().splitlines()
        if len(line.split()) > 2
    )

    def pct(p: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] / 1000

    return PgbenchResult(
        binary=binary,
        tps=number(r"tps = ([\d.]+)"),
        transactions=int(number(r"number of transactions actually processed: (\d+)")),
        failed=int(number(r"number of failed transactions: (\d+)")),
        latency_avg_ms=number(r"latency average = ([\d.]+) ms"),
        p50_ms=pct(50),
        p99_ms=pct(99),
        returncode=done.returncode,
        output=output,
    )
