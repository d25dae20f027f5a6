"""The conftest guard that keeps every test connection on loopback."""

from __future__ import annotations

import socket

import pytest


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.1", "192.168.0.10", "8.8.8.8"])
def test_connections_to_other_addresses_never_leave_the_process(address: str) -> None:
    with socket.socket() as s, pytest.raises(ConnectionRefusedError, match="network rule"):
        s.connect((address, 80))


def test_ipv4_mapped_non_loopback_is_refused_too() -> None:
    with socket.socket(socket.AF_INET6) as s, pytest.raises(ConnectionRefusedError):
        s.connect(("::ffff:10.0.0.1", 80, 0, 0))


def test_loopback_still_connects() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())
