"""The origin's address stays private: no error body or header names its host or port.

Each kind of origin failure is provoked for real (a loopback port nobody listens
on, a hung origin, 5xx answers, among them a gateway page that names the
upstream it tried, a body that is not JSON, a dropped connection), then the
service's answer is searched for the address in every form.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse

from acechart.origin.address import AddressScrubber
from tests.conftest import NOW_MS, SimFactory, origin_settings
from tests.server_helpers import HOUR, ClientFactory, Service, query, start_service

START = NOW_MS - 20 * 24 * HOUR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def assert_private(resp: ClientResponse, host: str, port: int) -> dict[str, Any]:
    text = await resp.text()
    shown = [text, *(f"{k}: {v}" for k, v in resp.headers.items())]
    for item in shown:
        for form in (f"{host}:{port}", str(port), f"'{host}'", f"//{host}"):
            assert form not in item, f"{form!r} leaked in {item!r}"
    body: dict[str, Any] = await resp.json()
    return body


def test_the_scrubber_hides_every_form_of_an_address() -> None:
    """Text only: the scrubber never resolves or connects (loopback addresses all the same,
    by the network rule)."""
    scrub = AddressScrubber("http://127.0.0.9:8080/api")
    text = (
        "Cannot connect to host 127.0.0.9:8080 ssl:default [Connect call failed"
        " ('127.0.0.9', 8080)] GET http://127.0.0.9:8080/api/sites at 127.0.0.9"
    )
    out = scrub(text)
    assert "127.0.0.9" not in out and "8080" not in out
    assert out.count("the origin") == 4
    # Other addresses and numbers are left alone.
    assert scrub("127.0.0.90 answered 80800 rows") == "127.0.0.90 answered 80800 rows"
    named = AddressScrubber("https://api.example.test/v1")
    assert named("upstream api.example.test:443 failed") == "upstream the origin failed"
    assert named("sub.api.example.test") == "sub.api.example.test"


async def test_connection_refused_names_no_address(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    from acechart.server import create_app
    from tests.server_helpers import ServiceServer

    port = free_port()
    settings = origin_settings(
        f"http://127.0.0.1:{port}/api",
        data_dir=str(tmp_path / "svc"),
        origin_max_attempts=2,
    )
    client = await aiohttp_client(ServiceServer(create_app(settings)))
    headers = {"X-ACE-Token": "demo-token"}
    resp = await client.get(
        "/api/timeseries", params=query(["a/b"], START, START + HOUR), headers=headers
    )
    assert resp.status == 502
    body = await assert_private(resp, "127.0.0.1", port)
    assert body["error"] == "origin_unavailable"
    assert "ClientConnectorError (Connection refused)" in body["message"]

    for path in ("/api/sites", "/api/whatever/else"):  # compatibility route, pass-through
        resp = await client.get(path, headers=headers)
        assert resp.status == 502
        await assert_private(resp, "127.0.0.1", port)

    ready = await client.get("/readyz")
    assert ready.status == 503
    report = await assert_private(ready, "127.0.0.1", port)
    assert report["checks"]["origin"].startswith("error")


@pytest.mark.parametrize(
    ("faults", "status", "code"),
    [
        (("hang", "hang"), 504, "origin_timeout"),
        (("502", "502"), 502, "origin_unavailable"),  # a gateway page naming the upstream
        (("504", "504"), 502, "origin_unavailable"),
        (("503", "500"), 502, "origin_unavailable"),
        (("corrupt",), 502, "origin_unavailable"),  # a 200 whose body is not JSON
        (("drop", "drop"), 502, "origin_unavailable"),
    ],
)
async def test_origin_failures_name_no_address(
    aiohttp_client: ClientFactory,
    make_simulator: SimFactory,
    tmp_path: Path,
    faults: tuple[Any, ...],
    status: int,
    code: str,
) -> None:
    sim = await make_simulator()
    svc: Service = await start_service(
        aiohttp_client,
        sim,
        tmp_path,
        origin_max_attempts=2,
        origin_timeout_s=0.5,
        origin_read_timeout_s=0.3,
    )
    sim.faults.configure(path_contains="/timeseries", hang_s=3.0)
    sim.faults.script(*faults)
    point = svc.points(1)[0]
    resp = await svc.get("/api/timeseries", query([point], START, START + HOUR))
    assert resp.status == status
    host, port = sim.server.host, sim.server.port
    assert port is not None
    body = await assert_private(resp, host, port)
    assert body["error"] == code
    assert sim.faults.pending == 0, "every scripted failure reached the service"
