"""The HTTP path against its ceiling, and the seed's mixed load, both driven by `wrk`.

`acechart serve` runs in its own process (loopback, the simulator as origin in a
third process, the production defaults: INFO request log, metrics, token
check, rate limiter on). Its cached small answer (3 one-minute points x 1 day,
JSON rows and MessagePack rows) is warmed, then `wrk` asks for it at 1, 10 and
50 connections. Beside it, in the same run and alternating case by case, a
minimal aiohttp handler that returns the very same bytes from a dict (the
ceiling of our stack: aiohttp's own cost per request on this machine). Reports
requests/s, their ratio and p50/p99 latency.

The mixed load is the seed's section 10.3 test (`benches.load` does it with a
Python client): 10 connections, 20% of the requests a fresh one-day window of
a random point (an edge-cache miss that reaches the block store or the
origin), the rest the cached small answer; p50/p95/p99 and the error rate, from
a `wrk` Lua script.

`wrk` is a Debian package (`apt-get install wrk`); without it these benchmarks
skip. Run with `make bench`, or for a table on its own:

    .venv/bin/python -m benches.bench_http              # every case, 5 s each
    .venv/bin/python -m benches.bench_http --seconds 3 --connections 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from acechart.times import format_time, parse_iso_ms
from benches.bench_origin import SITE, TOKEN, one_minute_points, start_simulator

#: The simulator's "now" is 2025-01-01 (`start_simulator`): a day well in the past.
SMALL_START = parse_iso_ms("2024-12-01T00:00:00Z")
DAY_MS = 86_400_000
CONNECTIONS = (1, 10, 50)
FORMATS = ("json", "msgpack")
CONTENT_TYPES = {"json": "application/json", "msgpack": "application/x-msgpack"}

# wrk's `done` hook: one JSON line with the figures we report (latencies in microseconds).
_REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK_JSON {"requests":%d,"duration_us":%d,"p50":%d,"p95":%d,"p99":%d,"max":%d,'
    .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not start")


@contextlib.contextmanager
def service(
    origin_url: str, *args: str, data_dir: str | None = None, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`acechart serve` in a child process on a free loopback port; `args` go before `serve`
    (`--log-level`), `env` are its `ACECHART_*` settings; a throwaway data directory unless
    `data_dir` is given."""
    port = _free_port()
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="acechart-http-"))
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
        child_env.update(
            ACECHART_RATE_LIMIT_PER_MINUTE="0",  # the load comes from one token
            ACECHART_EDGE_CACHE_BYTES=str(1024**3),
            **env,
        )
        cmd = [sys.executable, "-m", "acechart", *args, "serve", "--port", str(port)]
        cmd += ["--origin", origin_url, "--data-dir", data_dir]
        proc = subprocess.Popen(cmd, env=child_env, stderr=subprocess.DEVNULL)
        try:
            _wait_for(port, proc, "acechart serve")
            yield proc, f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@contextlib.contextmanager
def ceiling(bodies: dict[str, bytes]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The minimal aiohttp handler (this module's `ceiling` command) serving `bodies`."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="acechart-ceiling-") as tmp:
        args = []
        for fmt, body in bodies.items():
            path = Path(tmp) / fmt
            path.write_bytes(body)
            args += [f"--{fmt}", str(path)]
        cmd = [sys.executable, "-m", "benches.bench_http", "ceiling", "--port", str(port), *args]
        proc = subprocess.Popen(cmd)
        try:
            _wait_for(port, proc, "the ceiling server")
            yield proc, f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def run_ceiling(port: int, files: dict[str, str]) -> None:
    """A handler as small as aiohttp allows: the answer's bytes from a dict by `format`."""
    from aiohttp import web

    bodies = {fmt: (Path(path).read_bytes(), CONTENT_TYPES[fmt]) for fmt, path in files.items()}

    async def handle(request: web.Request) -> web.Response:
        body, content_type = bodies[request.query.get("format", "json")]
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/api/timeseries", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def small_query(points: list[str], fmt: str) -> str:
    params = {
        "site": SITE,
        "points": ",".join(points[:3]),
        "start": format_time(SMALL_START),
        "end": format_time(SMALL_START + DAY_MS),
        "format": fmt,
    }
    return "/api/timeseries?" + urlencode(params)


def fetch(url: str) -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers={"X-ACE-Token": TOKEN})
    with urllib.request.urlopen(request, timeout=60) as response:  # loopback only
        return response.read(), dict(response.headers)


def warm(base: str, points: list[str]) -> dict[str, bytes]:
    """Each format's small answer, asked until the edge cache serves it."""
    bodies = {}
    for fmt in FORMATS:
        body, headers = fetch(base + small_query(points, fmt))
        body, headers = fetch(base + small_query(points, fmt))
        if headers.get("X-Cache-Status") != "HIT":
            raise RuntimeError(f"the {fmt} answer is not an edge hit: {headers}")
        bodies[fmt] = body
    return bodies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (`/proc/<pid>/stat`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class WrkRun:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    cpu_s: float = 0.0
    """CPU time the server process spent during the run."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us(self) -> float:
        """Server CPU microseconds per request: steadier than req/s on a shared machine."""
        return 1e6 * self.cpu_s / max(self.requests, 1)

    def to_json(self) -> dict[str, float]:
        return {
            "req_per_s": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "errors": self.errors,
            "cpu_us_per_request": round(self.cpu_us, 1),
        }


def combined(runs: list[WrkRun]) -> WrkRun:
    """Rounds of one contender as one run: requests and times summed, each latency the
    median of the rounds' (a round disturbed by another process on the machine does not
    decide it), the worst max."""
    return WrkRun(
        requests=sum(r.requests for r in runs),
        seconds=sum(r.seconds for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p95_ms=statistics.median(r.p95_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        max_ms=max(r.max_ms for r in runs),
        errors=sum(r.errors for r in runs),
        cpu_s=sum(r.cpu_s for r in runs),
    )


def wrk(url: str, connections: int, seconds: float, script: str = "", pid: int = 0) -> WrkRun:
    """One `wrk` session (one thread: the service needs the other core); `pid`: the
    server's process, whose CPU time is counted."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + _REPORT_LUA)
        lua = f.name
    cpu = cpu_seconds(pid) if pid else 0.0
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
             "-H", f"X-ACE-Token: {TOKEN}", "-s", lua, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )  # fmt: skip
    finally:
        os.unlink(lua)
    cpu = cpu_seconds(pid) - cpu if pid else 0.0
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK_JSON "))
    r = json.loads(line.removeprefix("WRK_JSON "))
    return WrkRun(
        requests=r["requests"],
        seconds=r["duration_us"] / 1e6,
        p50_ms=r["p50"] / 1e3,
        p95_ms=r["p95"] / 1e3,
        p99_ms=r["p99"] / 1e3,
        max_ms=r["max"] / 1e3,
        errors=sum(r[k] for k in ("connect", "read", "write", "status", "timeout")),
        cpu_s=cpu,
    )


def mixed_script(points: list[str], share: float, count: int, seed: int = 0) -> str:
    """A Lua `request` hook: `share` of the requests a fresh one-day window of a random
    point (each window asked once), the rest the cached small answer."""
    rng = random.Random(seed)
    paths = []
    for _ in range(count):
        start = SMALL_START - rng.randrange(2 * 24 * 60, 90 * 24 * 60) * 60_000
        params = {
            "site": SITE,
            "points": rng.choice(points),
            "start": format_time(start),
            "end": format_time(start + DAY_MS),
        }
        paths.append("/api/timeseries?" + urlencode(params))
    table = ",\n".join(json.dumps(p) for p in paths)
    small = json.dumps(small_query(points, "json"))
    return f"""
math.randomseed({seed})
local fresh = {{
{table}
}}
local next_fresh = 1
local small = {small}
uncached, cached = 0, 0
request = function()
  if math.random() < {share} and next_fresh <= #fresh then
    local path = fresh[next_fresh]
    next_fresh = next_fresh + 1
    return wrk.format("GET", path)
  end
  return wrk.format("GET", small)
end
"""


@dataclass
class Bench:
    """One service and one ceiling, both warm, for a whole run."""

    base: str
    ceiling_base: str
    points: list[str]
    pid: int
    ceiling_pid: int


@contextlib.contextmanager
def bench_servers(*args: str) -> Iterator[Bench]:
    """The service (`args`: its command line's options) and the ceiling, both warm."""
    sim, origin = start_simulator(latency_s=0.0)
    try:
        with service(origin, *args) as (proc, base):
            points = one_minute_points(50)
            bodies = warm(base, points)
            with ceiling(bodies) as (top, ceiling_base):
                for fmt in FORMATS:
                    got, _ = fetch(ceiling_base + small_query(points, fmt))
                    assert got == bodies[fmt], "the ceiling must answer the same bytes"
                yield Bench(base, ceiling_base, points, proc.pid, top.pid)
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def cached_case(b: Bench, fmt: str, connections: int, seconds: float) -> dict[str, Any]:
    """Ours and the ceiling on one case, alternating in one-second rounds for `seconds`
    each (the ceiling first in odd rounds), so both see the same machine."""
    path = small_query(b.points, fmt)
    contenders = {"acechart": (b.base, b.pid), "ceiling": (b.ceiling_base, b.ceiling_pid)}
    runs: dict[str, list[WrkRun]] = {name: [] for name in contenders}
    ratios = []
    for i in range(max(1, round(seconds))):
        names = list(contenders) if i % 2 == 0 else list(reversed(contenders))
        got = {}
        for name in names:
            base, pid = contenders[name]
            got[name] = wrk(base + path, connections, 1, pid=pid)
            runs[name].append(got[name])
        ratios.append(got["acechart"].rps / got["ceiling"].rps)
    ours, top = combined(runs["acechart"]), combined(runs["ceiling"])
    return {
        "format": fmt,
        "connections": connections,
        "acechart": ours.to_json(),
        "ceiling": top.to_json(),
        "ratio": round(statistics.median(ratios), 3),
        "cpu_ratio": round(top.cpu_us / max(ours.cpu_us, 1e-9), 3),
    }


def mixed_case(b: Bench, seconds: float, connections: int = 10, share: float = 0.2) -> WrkRun:
    return wrk(b.base + "/", connections, seconds, mixed_script(b.points, share, 20_000), b.pid)


# --- pytest (make bench) -------------------------------------------------------------

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


@pytest.fixture(scope="module")
def servers() -> Iterator[Bench]:
    with bench_servers() as b:
        yield b


@needs_wrk
@pytest.mark.parametrize("connections", CONNECTIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_http_cached(benchmark: Any, servers: Bench, fmt: str, connections: int) -> None:
    benchmark.group = f"http cached small {fmt} c={connections}"
    case = benchmark.pedantic(
        cached_case, args=(servers, fmt, connections, 5.0), rounds=1, iterations=1
    )
    benchmark.extra_info.update(impl="acechart", http=case)
    assert case["acechart"]["errors"] == 0 and case["ceiling"]["errors"] == 0


@needs_wrk
def test_http_mixed(benchmark: Any, servers: Bench) -> None:
    benchmark.group = "http mixed load 20% uncached c=10"
    run = benchmark.pedantic(mixed_case, args=(servers, 10.0), rounds=1, iterations=1)
    benchmark.extra_info.update(impl="acechart", http={"acechart": run.to_json()})
    assert run.requests > 0


# --- script ----------------------------------------------------------------------------


def table(cases: list[dict[str, Any]]) -> str:
    lines = [
        "| format | connections | acechart req/s | ceiling req/s | ratio "
        "| acechart p50 / p99 ms | ceiling p50 / p99 ms | server CPU µs/request (ours / ceiling) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in cases:
        a, z = c["acechart"], c["ceiling"]
        lines.append(
            f"| {c['format']} | {c['connections']} | {a['req_per_s']:,.0f} | "
            f"{z['req_per_s']:,.0f} | {c['ratio']:.2f} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
            f"{z['p50_ms']:.2f} / {z['p99_ms']:.2f} | "
            f"{a['cpu_us_per_request']:.0f} / {z['cpu_us_per_request']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benches.bench_http", description=__doc__)
    sub = p.add_subparsers(dest="command")
    c = sub.add_parser("ceiling", help="(internal) serve the ceiling handler")
    c.add_argument("--port", type=int, required=True)
    for fmt in FORMATS:
        c.add_argument(f"--{fmt}", required=True)
    p.add_argument("--seconds", type=float, default=5.0, help="each wrk session (default 5)")
    p.add_argument("--connections", type=int, nargs="*", default=list(CONNECTIONS))
    p.add_argument("--mixed-seconds", type=float, default=10.0, help="0 skips the mixed load")
    p.add_argument(
        "--service-args",
        nargs="*",
        default=[],
        help="options of `acechart` for the service, e.g. --log-level WARNING",
    )
    args = p.parse_args(argv)
    if args.command == "ceiling":
        run_ceiling(args.port, {fmt: getattr(args, fmt) for fmt in FORMATS})
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with bench_servers(*args.service_args) as b:
        cases = []
        for fmt, conns in ((f, n) for f in FORMATS for n in args.connections):
            cases.append(cached_case(b, fmt, conns, args.seconds))
        print(table(cases))
        if args.mixed_seconds > 0:
            run = mixed_case(b, args.mixed_seconds)
            print(
                f"\nmixed load, 10 connections, 20% uncached, {args.mixed_seconds:g} s: "
                f"{run.rps:,.0f} req/s, p50 {run.p50_ms:.2f} ms, p95 {run.p95_ms:.2f} ms, "
                f"p99 {run.p99_ms:.2f} ms, max {run.max_ms:.1f} ms, errors {run.errors} "
                f"({100 * run.errors / max(run.requests, 1):.2f}%), "
                f"server CPU {run.cpu_us:.0f} µs/request"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
