"""Load test of a running acechart service (the seed's section 10.3), loopback only.

    python -m benches.load                        # spawns `acechart demo` on free ports
    python -m benches.load --url http://127.0.0.1:8080 --token demo-token
    python -m benches.load --requests 1000 --concurrency 10 --uncached 0.2

Sends `--requests` GETs of /api/timeseries with `--concurrency` in flight. A
share `--uncached` of them ask for a fresh random one-day window (an edge-cache
miss that reaches the block store or the origin); the rest repeat one small
query (3 points x 1 day), which is served from the edge cache after the first.
Prints p50/p95/p99/max latency, throughput, the error rate and the
X-Cache-Status counts, against the seed's targets (p50 < 100 ms, p95 < 500
ms, p99 < 2 s, errors < 0.1%). Bounded in count and in time (`--max-seconds`),
and it refuses any target that is not a loopback address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import random
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
import numpy as np

DEFAULT_SITE = "ses_falls_city"


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    """X-Processing-Time: the handler's own time, without event-loop queueing or socket I/O."""
    statuses: Counter[int] = field(default_factory=Counter)
    cache: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return len(self.latencies_ms)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200) + sum(
            self.failures.values()
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benches.load", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--url", help="base URL of a running service (default: spawn `acechart demo`)")
    p.add_argument("--token", default="demo-token", help="token to send (default demo-token)")
    p.add_argument("--site", default=DEFAULT_SITE, help=f"site to query (default {DEFAULT_SITE})")
    p.add_argument("--requests", type=int, default=1000, help="requests to send (default 1000)")
    p.add_argument("--concurrency", type=int, default=10, help="requests in flight (default 10)")
    p.add_argument(
        "--uncached", type=float, default=0.0, help="share of edge-uncached requests (default 0)"
    )
    p.add_argument(
        "--max-seconds", type=float, default=120.0, help="stop after this long (default 120)"
    )
    p.add_argument("--format", default="json", choices=["json", "msgpack"], help="wire format")
    p.add_argument("--seed", type=int, default=0, help="seed of the random windows")
    p.add_argument(
        "--accept-encoding",
        default="gzip",
        help="Accept-Encoding sent (default gzip: cheap for this Python client to inflate)",
    )
    args = p.parse_args(argv)
    if not 1 <= args.requests <= 1_000_000 or not 1 <= args.concurrency <= 1000:
        p.error("--requests must be 1..1000000 and --concurrency 1..1000")
    if not 0.0 <= args.uncached <= 1.0:
        p.error("--uncached is a share between 0 and 1")
    return args


def require_loopback(url: str) -> None:
    """Load goes to this machine only: refuse any host that is not a loopback address."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise SystemExit(f"refusing to load {host!r}: only loopback targets (127.0.0.0/8, ::1)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def spawned_demo() -> AsyncIterator[str]:
    """`acechart demo` in a subprocess on free ports, with a throwaway cache."""
    port, origin_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    env["ACECHART_RATE_LIMIT_PER_MINUTE"] = "0"  # the load comes from one token
    with tempfile.TemporaryDirectory(prefix="acechart-load-") as data_dir:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "acechart", "demo", "--port", str(port),
            "--origin-port", str(origin_port), "--data-dir", data_dir,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            while b"curl" not in await asyncio.wait_for(proc.stdout.readline(), 60):
                if proc.returncode is not None:
                    raise SystemExit("acechart demo exited before it was ready")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            await proc.wait()


async def pick_points(session: aiohttp.ClientSession, site: str, n: int) -> list[str]:
    async with session.get("/api/points", params={"site": site, "limit": str(n)}) as r:
        if r.status != 200:
            raise SystemExit(f"/api/points answered {r.status}: {await r.text()}")
        return [p["name"] for p in (await r.json())["points"]]


async def run(args: argparse.Namespace, url: str) -> Tally:
    headers = {"X-ACE-Token": args.token, "Accept-Encoding": args.accept_encoding}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    tally = Tally()
    rng = random.Random(args.seed)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:
        catalogue = await pick_points(session, args.site, 50)
        small = {
            "site": args.site,
            "points": ",".join(catalogue[:3]),
            "start": (today - timedelta(days=10)).isoformat(),
            "end": (today - timedelta(days=9)).isoformat(),
            "format": args.format,
        }
        async with session.get("/api/timeseries", params=small) as warm:
            if warm.status != 200:
                raise SystemExit(f"warm-up answered {warm.status}: {await warm.text()}")
            await warm.read()

        def uncached() -> dict[str, str]:
            start = today - timedelta(minutes=rng.randrange(2 * 24 * 60, 60 * 24 * 60))
            return {
                **small,
                "points": rng.choice(catalogue),
                "start": start.isoformat(),
                "end": (start + timedelta(days=1)).isoformat(),
            }

        deadline = time.perf_counter() + args.max_seconds
        remaining = iter(range(args.requests))

        async def worker() -> None:
            for _ in remaining:
                if time.perf_counter() > deadline:
                    return
                params = uncached() if rng.random() < args.uncached else small
                t0 = time.perf_counter()
                try:
                    async with session.get("/api/timeseries", params=params) as resp:
                        await resp.read()
                        tally.statuses[resp.status] += 1
                        tally.cache[resp.headers.get("X-Cache-Status", "-")] += 1
                        took = resp.headers.get("X-Processing-Time", "")
                        if took.endswith("ms"):
                            tally.server_ms.append(float(took[:-2]))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    tally.failures[type(exc).__name__] += 1
                tally.latencies_ms.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return tally


def report(args: argparse.Namespace, tally: Tally, seconds: float, client_cpu_s: float) -> str:
    lat = np.array(tally.latencies_ms)
    p50, p95, p99 = np.percentile(lat, [50, 95, 99]) if len(lat) else (0.0, 0.0, 0.0)
    server = np.percentile(tally.server_ms, [50, 99]) if tally.server_ms else (0.0, 0.0)
    rate = tally.errors / max(tally.sent, 1)
    lines = [
        f"requests {tally.sent} (of {args.requests}), concurrency {args.concurrency}, "
        f"uncached share {args.uncached:g}, format {args.format}",
        f"  time {seconds:.2f} s, {tally.sent / seconds:.0f} req/s",
        f"  latency ms: p50 {p50:.2f}  p95 {p95:.2f}  p99 {p99:.2f}  max {lat.max():.2f}"
        if len(lat)
        else "  no requests completed",
        f"  server X-Processing-Time ms: p50 {server[0]:.2f}  p99 {server[1]:.2f}; "
        f"load client CPU {1000 * client_cpu_s / max(tally.sent, 1):.2f} ms per request "
        "(client and service share this machine's cores)",
        f"  errors {tally.errors} ({100 * rate:.2f}%), statuses {dict(tally.statuses)}"
        + (f", failures {dict(tally.failures)}" if tally.failures else ""),
        f"  X-Cache-Status {dict(tally.cache)}",
        "  seed targets: p50 < 100 ms, p95 < 500 ms, p99 < 2000 ms, errors < 0.1%: "
        + ("met" if p50 < 100 and p95 < 500 and p99 < 2000 and rate < 0.001 else "NOT met"),
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    if args.url:
        require_loopback(args.url)
        started, cpu = time.perf_counter(), time.process_time()
        tally = await run(args, args.url.rstrip("/"))
    else:
        async with spawned_demo() as url:
            started, cpu = time.perf_counter(), time.process_time()
            tally = await run(args, url)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(report(args, tally, elapsed, cpu))
    return 0 if tally.sent and tally.errors / tally.sent < 0.001 else 1


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
