"""The conftest guard that keeps every test connection on loopback.

Refusals are tested by classifying addresses, never by connecting to one: a guard
that failed would otherwise reach the address under test.
"""

from __future__ import annotations

import socket

import pytest

from tests.conftest import refuse_non_loopback


@pytest.mark.parametrize(
    "address",
    [("169.254.169.254", 80), ("10.0.0.1", 80), ("192.168.0.10", 80), ("8.8.8.8", 443),
     ("::ffff:10.0.0.1", 80, 0, 0), ("fd00::1", 80, 0, 0), ("fe80::1%eth0", 80, 0, 0)],
)  # fmt: skip
def test_other_addresses_are_refused(address: tuple[object, ...]) -> None:
    with pytest.raises(ConnectionRefusedError, match="network rule"):
        refuse_non_loopback(address)


@pytest.mark.parametrize(
    "address", [("127.0.0.1", 80), ("127.8.9.10", 80), ("::1", 80, 0, 0), ("::ffff:127.0.0.1", 80)]
)
def test_loopback_addresses_pass(address: tuple[object, ...]) -> None:
    refuse_non_loopback(address)


def test_every_socket_connect_goes_through_the_guard() -> None:
    """The session fixture has replaced both connect methods (checked without a call)."""
    for method in (socket.socket.connect, socket.socket.connect_ex):
        assert "refuse_non_loopback" in method.__code__.co_names


def test_loopback_still_connects() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())
