"""notifyUrl is a request the service makes wherever a caller says: it must not reach
the service's own host, its network, or the cloud's metadata address.

Every receiver here listens on 127.0.0.1 and is reached only with the test-only
`job_webhook_allow_loopback_for_tests`; every refusal is decided by classifying
addresses (literals, or what an injected resolver answers) without connecting, and the
tests check that no connection was attempted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import os
import stat
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.connector import TCPConnector
from aiohttp.test_utils import TestServer

from acechart.errors import BadRequest
from acechart.jobs.tokens import WEBHOOK_KEY_FILE
from acechart.jobs.webhook import Notifier, WebhookPolicy, WebhookRefused, address_kind
from tests.conftest import TOKEN
from tests.jobs_support import StackFactory, finish, query

ServerFactory = Callable[..., Awaitable[TestServer]]


class Receiver:
    """A webhook receiver on 127.0.0.1 that records what it was sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []
        self.answer = 204
        self.location: str | None = None
        self.arrived = asyncio.Event()
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.path, await request.read(), dict(request.headers)))
        self.arrived.set()
        headers = {"Location": self.location} if self.location else None
        return web.Response(status=self.answer, headers=headers)

    async def wait(self, n: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.calls) < n:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def receiver(aiohttp_server: ServerFactory) -> Receiver:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", hook.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    hook.port = server.port or 0
    return hook


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every TCP connection aiohttp opens from now on (they still go ahead)."""
    opened: list[Any] = []
    real = TCPConnector._create_connection

    async def spy(self: TCPConnector, req: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(req.url)
        return await real(self, req, *args, **kwargs)

    monkeypatch.setattr(TCPConnector, "_create_connection", spy)
    return opened


def resolver(answers: dict[str, Sequence[str]]) -> Any:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return answers[host]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("8.8.8.8", "public"),
        ("2001:4860:4860::8888", "public"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::127.0.0.1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("169.254.169.254", "link-local"),
        ("::ffff:169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("fd00::1", "unique-local"),
        ("fc00::5", "unique-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "reserved"),
        ("192.0.2.1", "reserved"),
    ],
)
def test_addresses_are_classified(address: str, kind: str) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:169.254.169.254]/",
        "http://10.0.0.1/hook",
        "http://192.168.0.10/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0:9/hook",
        "http://user:s3cr3t@example.com/hook",
        "http://example.com@127.0.0.1/hook",
    ],
)
async def test_refused_notify_urls_are_400_at_submission(
    stacks: StackFactory, url: str, connections: list[Any]
) -> None:
    stack = await stacks.open(job_workers=0)
    with pytest.raises(BadRequest) as caught:
        await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN, notify_url=url)
    assert caught.value.parameter == "metadata.notifyUrl"
    assert "s3cr3t" not in caught.value.message
    assert connections == []


async def test_names_resolving_to_refused_addresses_are_never_called(
    receiver: Receiver, connections: list[Any]
) -> None:
    resolve = resolver(
        {
            "loop.test": ["127.0.0.1"],  # the receiver is really there: it must see nothing
            "meta.test": ["169.254.169.254"],
            "mapped.test": ["::ffff:127.0.0.1"],
            "lan.test": ["10.20.30.40"],
            "ula.test": ["fd12:3456::1"],
            "mixed.test": ["8.8.8.8", "127.0.0.1"],  # one bad address is enough
        }
    )
    notifier = Notifier(secret="k", attempts=3, timeout_s=2, resolve=resolve, first_delay_s=0)
    for host in ("loop.test", "meta.test", "mapped.test", "lan.test", "ula.test", "mixed.test"):
        url = f"http://{host}:{receiver.port}/hook"
        assert await notifier.deliver(url, "job-1", "completed") is False
    assert receiver.calls == [] and connections == []
    # A refusal is not retried: one lookup per URL.
    assert len(resolve.asked) == 6


async def test_the_connection_goes_to_the_address_that_was_checked(
    receiver: Receiver, connections: list[Any]
) -> None:
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])  # a second lookup would be rebound

    async def rebinding(host: str, port: int) -> Sequence[str]:
        return next(answers)

    notifier = Notifier(
        secret="k",
        attempts=1,
        timeout_s=5,
        resolve=rebinding,
        policy=WebhookPolicy(allow_loopback_for_tests=True),
    )
    # `hooks.test` is not in any DNS: only the pinned resolver can answer for it.
    assert await notifier.deliver(f"http://hooks.test:{receiver.port}/h", "j", "completed")
    assert len(receiver.calls) == 1
    _, _, headers = receiver.calls[0]
    assert headers["Host"] == f"hooks.test:{receiver.port}"
    assert len(connections) == 1


async def test_redirects_are_not_followed(
    receiver: Receiver, aiohttp_server: ServerFactory
) -> None:
    other = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", other.handle)
    other_server = await aiohttp_server(app, host="127.0.0.1")
    receiver.answer = 307
    receiver.location = f"http://127.0.0.1:{other_server.port}/stolen"
    notifier = Notifier(
        secret="k",
        attempts=2,
        timeout_s=5,
        first_delay_s=0,
        policy=WebhookPolicy(allow_loopback_for_tests=True),
    )
    url = f"http://127.0.0.1:{receiver.port}/hook"
    assert await notifier.deliver(url, "j", "completed") is False
    assert len(receiver.calls) == 2 and other.calls == []


def test_the_allow_list() -> None:
    names = WebhookPolicy(allow=("hooks.internal", "*.corp.example"))
    for url in ("http://other.example/h", "http://corp.example/h", "http://8.8.8.8/h"):
        with pytest.raises(WebhookRefused, match="ALLOW"):
            names.check_url(url)  # refused at submission, before any lookup
    policy = WebhookPolicy(allow=("hooks.internal", "*.corp.example", "10.1.0.0/16"))
    with pytest.raises(WebhookRefused, match="ALLOW"):
        policy.check_url("http://8.8.8.8/h")
    listed = policy.check_url("https://hooks.internal/h")
    policy.check_address(listed, ipaddress.ip_address("10.200.0.5"))  # private: fine if listed
    with pytest.raises(WebhookRefused, match="link-local"):
        policy.check_address(listed, ipaddress.ip_address("169.254.169.254"))
    with pytest.raises(WebhookRefused, match="loopback"):
        policy.check_address(listed, ipaddress.ip_address("127.0.0.1"))
    sub = policy.check_url("https://a.b.corp.example/h")
    policy.check_address(sub, ipaddress.ip_address("192.168.3.4"))
    policy.check_url("http://10.1.2.3/h")  # inside a listed network
    with pytest.raises(WebhookRefused):
        policy.check_url("http://10.2.0.1/h")
    unlisted_name = WebhookPolicy(allow=("10.1.0.0/16",)).check_url("http://name.example/h")
    with pytest.raises(WebhookRefused, match="ALLOW"):
        WebhookPolicy(allow=("10.1.0.0/16",)).check_address(
            unlisted_name, ipaddress.ip_address("8.8.8.8")
        )
    # Without an allow-list a private address is refused whatever the name.
    with pytest.raises(WebhookRefused, match="private"):
        WebhookPolicy().check_address(
            WebhookPolicy().check_url("http://x.example/"), ipaddress.ip_address("10.1.2.3")
        )


def _valid(key: str, body: bytes, signature: str | None) -> bool:
    want = "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    return signature is not None and hmac.compare_digest(want, signature)


async def test_webhooks_are_signed_by_default(stacks: StackFactory, receiver: Receiver) -> None:
    stack = await stacks.open(job_webhook_allow_loopback_for_tests=True)
    key_file = stacks.data_dir / WEBHOOK_KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text().strip()
    url = f"http://127.0.0.1:{receiver.port}/hook"
    job = await stack.jobs.submit(query(stack.sim, 1, 1), "json", TOKEN, notify_url=url)
    final, _ = await finish(stack.jobs, job.id)
    assert final.status == "completed"
    await receiver.wait(1)
    _, body, headers = receiver.calls[0]
    assert _valid(key, body, headers.get("X-Acechart-Signature"))
    # The key is kept: the next process signs with the same one.
    await stacks.close(stack)
    again = await stacks.open(job_webhook_allow_loopback_for_tests=True)
    assert again.jobs.notifier.secret == key


async def test_every_caller_of_a_deduplicated_job_is_notified(
    stacks: StackFactory, receiver: Receiver
) -> None:
    stack = await stacks.open(job_workers=0, job_webhook_allow_loopback_for_tests=True)
    q = query(stack.sim, 1, 1)
    base = f"http://127.0.0.1:{receiver.port}"
    first = await stack.jobs.submit(q, "json", TOKEN, notify_url=f"{base}/first")
    second = await stack.jobs.submit(q, "json", TOKEN, notify_url=f"{base}/second")
    third = await stack.jobs.submit(q, "json", TOKEN, notify_url=f"{base}/first")  # again
    fourth = await stack.jobs.submit(q, "json", TOKEN)
    assert first.id == second.id == third.id == fourth.id
    # Subscribers are durable: a new process (with workers) runs the job and calls both.
    await stacks.close(stack)
    runner = await stacks.open(job_webhook_allow_loopback_for_tests=True)
    final, _ = await finish(runner.jobs, first.id)
    assert final.status == "completed"
    await receiver.wait(2)
    await asyncio.sleep(0.2)  # nothing more arrives
    assert sorted(path for path, _, _ in receiver.calls) == ["/first", "/second"]


def test_a_notify_url_with_credentials_is_refused_by_the_model() -> None:
    from acechart.jobs.model import JobRequest
    from acechart.query import Query

    q = Query("s", ("p",), 0, 60_000)
    with pytest.raises(BadRequest) as caught:
        JobRequest.build(
            q, notify_url="https://u:p@hooks.example/h", max_points=10, max_range_days=10
        )
    assert caught.value.parameter == "metadata.notifyUrl"


@pytest.mark.parametrize("value", ["a b", "x@y", "http://x/"])
def test_allow_patterns_are_checked(value: str, tmp_path: Path) -> None:
    from acechart.errors import ConfigError
    from acechart.settings import Settings

    with pytest.raises(ConfigError, match="WEBHOOK_ALLOW"):
        Settings.from_env({}, job_webhook_allow=(value,), data_dir=str(tmp_path))
