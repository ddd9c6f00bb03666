"""A lean HTTP/1.1 load generator, run in a process of its own: `python -m bench.loadgen …`.

Closed loop (`--concurrency` connections, each sending its next request when the last one
answered) or open loop (`--rate`: requests are due at fixed times whatever the server does, and
latency counts from when a request was due, so a slow server cannot hide its queue by slowing
the generator down — the coordinated-omission trap wrk falls into and wrk2 avoids). Keep-alive
connections on raw asyncio streams, uvloop when installed. Prints one `BENCH-RESULT {json}` line.

`--mode mixed` (closed loop only): each connection sends an authorization and, when it is
approved, one follow-up on it: 8 in 10 a clearing of the held amount, 1 in 10 a full reversal,
1 in 10 an incremental authorization; approvals, declines and HTTP errors are counted per kind.
"""

import argparse
import asyncio
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.idscheme import ALPHABET

OUTCOMES = ("approved", "declined", "failed")
FOLLOW_UP_PATHS = {
    "clearing": "/v1/network/clearings",
    "reversal": "/v1/network/reversals",
    "increment": "/v1/network/incremental-authorizations",
}


class ConnectionLost(Exception):
    pass


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    approved: int = 0
    declined: int = 0
    http_errors: int = 0
    connect_errors: int = 0
    read_errors: int = 0
    timeouts: int = 0
    # kind of message -> outcome (approved, declined, failed) -> count; mixed mode only.
    kinds: defaultdict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    )

    def report(self, seconds: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            if not ordered:
                return 0.0
            return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000

        return {
            "requests": len(ordered),
            "duration_s": seconds,
            "approved": self.approved,
            "declined": self.declined,
            "http_errors": self.http_errors,
            "connect_errors": self.connect_errors,
            "read_errors": self.read_errors,
            "write_errors": 0,
            "timeouts": self.timeouts,
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "p999_ms": pct(99.9),
            "max_ms": ordered[-1] * 1000 if ordered else 0.0,
            "mean_ms": sum(ordered) / len(ordered) * 1000 if ordered else 0.0,
            "kinds": dict(self.kinds),
        }


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ConnectionLost from exc
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body


def build(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def base32(n: int) -> str:
    return "".join(ALPHABET[(n >> (5 * i)) & 31] for i in range(9, -1, -1))


def request_factory(args: argparse.Namespace) -> Callable[[], bytes]:
    host = f"{args.host}:{args.port}"
    if args.mode == "ping":
        ping = build("GET", "/v1/ping", host, {}, b"")
        return lambda: ping
    sent = 0
    headers = {"Content-Type": "application/json", "X-API-Key": args.key}

    def authorization() -> bytes:
        nonlocal sent
        sent += 1
        body = {
            "card_id": args.card_head + base32(random.randint(1, args.cards)),
            "amount": random.randint(100, 999),
            "currency": "EUR",
            "merchant": {"name": "Shop", "mcc": "5411", "country": "PL", "city": "Warszawa"},
            "channel": "POS",
            "entry_mode": "CHIP",
            "network": {"network_transaction_id": f"{args.tag}-{sent}"},
        }
        return build(
            "POST",
            "/v1/network/authorizations",
            host,
            headers,
            json.dumps(body, separators=(",", ":")).encode(),
        )

    return authorization


def follow_up_kind(n: int) -> str:
    """8 clearings, 1 reversal and 1 increment in every 10 follow-ups (bench/wrk/mixed.lua
    picks them the same way)."""
    return "reversal" if n % 10 == 0 else "increment" if n % 10 == 5 else "clearing"


def follow_up_factory(args: argparse.Namespace) -> Callable[[str], tuple[str, bytes]]:
    """A follow-up message on an approved authorization: its kind and its request."""
    host = f"{args.host}:{args.port}"
    headers = {"Content-Type": "application/json", "X-API-Key": args.key}
    sent = 0

    def follow_up(authorization_id: str) -> tuple[str, bytes]:
        nonlocal sent
        sent += 1
        kind = follow_up_kind(sent)
        body: dict[str, Any] = {
            "authorization_id": authorization_id,
            "network": {"network_transaction_id": f"{args.tag}-f{sent}"},
        }
        if kind == "increment":
            body["amount"] = random.randint(100, 999)
        encoded = json.dumps(body, separators=(",", ":")).encode()
        return kind, build("POST", FOLLOW_UP_PATHS[kind], host, headers, encoded)

    return follow_up


async def exchange(connection: Connection, request: bytes) -> tuple[int, bytes]:
    reused = connection.writer is not None
    try:
        return await connection.exchange(request)
    except ConnectionLost:
        if not reused:
            raise
    # The server closed an idle keep-alive connection just as we reused it: say it again on a
    # fresh one, as any HTTP client would.
    connection.close()
    return await connection.exchange(request)


async def one(
    connection: Connection,
    request: bytes,
    due: float,
    tally: Tally,
    limit: float,
    kind: str | None = None,
) -> bytes | None:
    """Send `request` and count its answer (under `kind` too, when given); the answer's body
    when it is an approval."""
    try:
        async with asyncio.timeout(limit):
            status, body = await exchange(connection, request)
    except TimeoutError:
        tally.timeouts += 1
        connection.close()
        return None
    except ConnectionLost:
        tally.read_errors += 1
        connection.close()
        return None
    except OSError:
        tally.connect_errors += 1
        connection.close()
        return None
    tally.latencies.append(time.perf_counter() - due)
    outcome = None
    if status != 200:
        tally.http_errors += 1
        outcome = "failed"
    elif b'"response_code":"00"' in body:
        tally.approved += 1
        outcome = "approved"
    elif b'"response_code"' in body:
        tally.declined += 1
        outcome = "declined"
    if kind is not None and outcome is not None:
        tally.kinds[kind][outcome] += 1
    return body if outcome == "approved" else None


async def closed_loop(args: argparse.Namespace, next_request: Callable[[], bytes]) -> Tally:
    tally = Tally()
    deadline = time.perf_counter() + args.duration
    follow_up = follow_up_factory(args) if args.mode == "mixed" else None

    async def worker() -> None:
        connection = Connection(args.host, args.port)
        while time.perf_counter() < deadline:
            if follow_up is None:
                await one(connection, next_request(), time.perf_counter(), tally, args.timeout)
                continue
            approved = await one(
                connection,
                next_request(),
                time.perf_counter(),
                tally,
                args.timeout,
                "authorization",
            )
            if approved is None or time.perf_counter() >= deadline:
                continue
            # The follow-up goes out once its authorization's answer is in, on the same
            # connection.
            kind, request = follow_up(json.loads(approved)["authorization_id"])
            await one(connection, request, time.perf_counter(), tally, args.timeout, kind)
        connection.close()

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return tally


async def open_loop(args: argparse.Namespace, next_request: Callable[[], bytes]) -> Tally:
    tally = Tally()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(args.concurrency):
        idle.put_nowait(Connection(args.host, args.port))
    started = time.perf_counter()
    total = int(args.rate * args.duration)
    in_flight: set[asyncio.Task[None]] = set()

    async def fire(due: float) -> None:
        # Waiting here for a free connection is queueing the server caused: it is counted.
        connection = await idle.get()
        try:
            await one(connection, next_request(), due, tally, args.timeout)
        finally:
            idle.put_nowait(connection)

    for i in range(total):
        due = started + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(fire(due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.gather(*in_flight)
    return tally


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("auth", "mixed", "ping"), default="auth")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--rate", type=float, help="open loop: requests per second")
    parser.add_argument("--timeout", type=float, default=10)
    parser.add_argument("--key", default="")
    parser.add_argument("--card-head", default="")
    parser.add_argument("--cards", type=int, default=1)
    parser.add_argument("--tag", default="gen")
    args = parser.parse_args(argv)
    if args.mode == "mixed" and args.rate:
        parser.error("--mode mixed is closed loop: no --rate")
    runner: Callable[[Any], Tally] = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    next_request = request_factory(args)
    started = time.perf_counter()
    run = open_loop if args.rate else closed_loop
    tally = runner(run(args, next_request))
    print("BENCH-RESULT " + json.dumps(tally.report(time.perf_counter() - started)))


if __name__ == "__main__":
    main()
