"""notifyUrl calls: `POST {jobId, status}` when a job completes or fails.

The receiver authenticates the call by the `X-Acechart-Signature` header,
`sha256=` + hex HMAC-SHA256 of the exact body under `ACECHART_JOB_WEBHOOK_SECRET`
(the scheme GitHub's webhooks use, so receivers have code for it); unset, a
random key generated once and kept in `{data_dir}/job-webhook.key`, so calls
are always signed. Delivery is best effort: a few tries with backoff in the
background, and a receiver that stays down is logged, never a reason to fail or
delay the job.

A notifyUrl is anyone's choice of where this service makes a request, so
`WebhookPolicy` decides where it may go (server-side request forgery):

- only `http` and `https`, no userinfo (`user:pass@`) in the URL;
- the host is resolved, and every address it resolves to is classified:
  loopback, link-local (169.254/16, fe80::/10: cloud metadata lives there),
  unspecified, multicast and other reserved ranges are refused, and so are
  private (10/8, 172.16/12, 192.168/16) and unique-local (fc00::/7)
  addresses unless the host is on `ACECHART_JOB_WEBHOOK_ALLOW`. IPv6 forms
  that embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible,
  6to4 `2002::/16`, NAT64 `64:ff9b::/96`) are judged by that address;
- when `ACECHART_JOB_WEBHOOK_ALLOW` is set, only hosts it lists are notified;
- the connection goes to the address that was checked and no other: the
  session's resolver (`_PinnedResolver`) answers with it, so a second DNS
  answer (rebinding) is never asked for;
- redirects are not followed.

`ACECHART_JOB_WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS` lets loopback through, for tests
whose receivers listen on 127.0.0.1; it has no use in a deployment.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "SIGNATURE_HEADER",
    "Notifier",
    "Resolve",
    "WebhookPolicy",
    "WebhookRefused",
    "address_kind",
    "sign",
]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Acechart-Signature"
_FIRST_DELAY_S = 0.5

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolve = Callable[[str, int], Awaitable[Sequence[str]]]
"""(host, port) -> the addresses the host resolves to, as text."""

_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class WebhookRefused(ValueError):
    """A notifyUrl this service will not call; the message says why (no secrets in it)."""


def sign(secret: str, body: bytes) -> str:
    """The signature header value for `body`: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def address_kind(address: IPAddress) -> str:
    """`public`, or what else the address is: `loopback`, `link-local`, `private`,
    `unique-local`, `unspecified`, `multicast` or `reserved`. An IPv6 address that
    embeds an IPv4 one is judged by the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_kind(address.ipv4_mapped)
        if address.sixtofour is not None:
            return address_kind(address.sixtofour)
        if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
            return address_kind(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.teredo is not None:
            return "reserved"
        if address in _UNIQUE_LOCAL:
            return "unique-local"
    elif any(address in net for net in _PRIVATE):
        return "private"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if not address.is_global:
        return "reserved"
    return "public"


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    literal: IPAddress | None
    listed: bool
    """The host matched an `allow` host pattern (so private addresses are fine)."""


@dataclass(frozen=True)
class WebhookPolicy:
    """Where notifyUrl calls may go (see the module docstring)."""

    allow: tuple[str, ...] = ()
    """Host patterns (`hooks.example.com`, `*.example.org`) and networks (`10.1.0.0/16`)."""
    allow_loopback_for_tests: bool = False

    def check_url(self, url: str) -> _Target:
        """The URL's host and port if its form and host are acceptable, else `WebhookRefused`.
        Does no I/O: an address literal is classified here, a name when it is resolved."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise WebhookRefused("not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebhookRefused("only absolute http(s) URLs")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise WebhookRefused("credentials (user:password@) are not allowed in the URL")
        host = parts.hostname.rstrip(".").lower()
        if port is None:
            port = 443 if parts.scheme == "https" else 80
        try:
            literal: IPAddress | None = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            literal = None
        listed = literal is None and any(
            fnmatch.fnmatchcase(host, p.lower()) for p in self.allow if not _is_network(p)
        )
        target = _Target(host, port, literal, listed)
        if self.allow and literal is None and not listed and not self._networks():
            raise WebhookRefused(f"host {host} is not on ACECHART_JOB_WEBHOOK_ALLOW")
        if literal is not None:
            self.check_address(target, literal)
        return target

    def check_address(self, target: _Target, address: IPAddress) -> None:
        """`WebhookRefused` unless `target` may be reached at `address`."""
        kind = address_kind(address)
        in_network = any(address in net for net in self._networks())
        if self.allow and not (target.listed or in_network):
            raise WebhookRefused(f"host {target.host} is not on ACECHART_JOB_WEBHOOK_ALLOW")
        if kind == "public":
            return
        if kind == "loopback" and self.allow_loopback_for_tests:
            return
        if kind in ("private", "unique-local") and (target.listed or in_network):
            return
        raise WebhookRefused(f"{target.host} is a {kind} address ({address}), which is refused")

    def _networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p, strict=False) for p in self.allow if _is_network(p)]


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


async def _system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinnedResolver(AbstractResolver):
    """Answers every lookup of `host` with the addresses that were checked, and nothing
    else: the connection cannot go anywhere the policy did not see."""

    def __init__(self, host: str, addresses: Sequence[IPAddress]) -> None:
        self.host = host
        self.addresses = list(addresses)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.rstrip(".").lower() != self.host:
            raise OSError(f"{host} was not checked")
        return [
            ResolveResult(
                hostname=host,
                host=str(a),
                port=port,
                family=socket.AF_INET6 if a.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


class Notifier:
    """Sends job notifications in background tasks it keeps track of."""

    def __init__(
        self,
        *,
        secret: str | None,
        attempts: int,
        timeout_s: float,
        first_delay_s: float = _FIRST_DELAY_S,
        policy: WebhookPolicy | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        self.secret = secret
        self.attempts = attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.first_delay_s = first_delay_s
        self.policy = policy or WebhookPolicy()
        self.resolve: Resolve = resolve or _system_resolve
        """How host names are looked up (tests inject one; nothing else is consulted)."""
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(self, url: str, job_id: str, status: str) -> asyncio.Task[bool]:
        """Start delivering `{jobId, status}` to `url`; the task answers whether it arrived."""
        task = asyncio.create_task(self.deliver(url, job_id, status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def deliver(self, url: str, job_id: str, status: str) -> bool:
        """POST the notification, retrying on errors and non-2xx answers; never raises.

        A URL the policy refuses is logged and dropped at once: nothing is connected.
        """
        body = json.dumps({"jobId": job_id, "status": status}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        where = _redacted(url)
        for attempt in range(1, self.attempts + 1):
            try:
                addresses = await self._checked(url)
            except WebhookRefused as exc:
                logger.error("not notifying %s of job %s: %s", where, job_id, exc)
                return False
            except OSError as exc:  # the name does not resolve (now): worth another try
                reason = f"cannot resolve the host ({type(exc).__name__})"
            else:
                try:
                    await self._post(url, addresses, body, headers)
                    logger.info("notified %s: job %s %s", where, job_id, status)
                    return True
                except _Answered as answered:
                    reason = f"answered {answered.status}"
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                delay = self.first_delay_s * 2 ** (attempt - 1)
                logger.warning(
                    "notifying %s of job %s failed (%s), attempt %d of %d; retrying in %.1f s",
                    where,
                    job_id,
                    reason,
                    attempt,
                    self.attempts,
                    delay,
                )
                await asyncio.sleep(delay)
            else:
                logger.error(
                    "notifying %s of job %s failed (%s) after %d attempts; giving up",
                    where,
                    job_id,
                    reason,
                    self.attempts,
                )
        return False

    async def _checked(self, url: str) -> tuple[_Target, list[IPAddress]]:
        """The target and the addresses it may be reached at; `WebhookRefused` when any
        address of the host is refused (a name with one bad address is not trusted)."""
        target = self.policy.check_url(url)
        if target.literal is not None:
            return target, [target.literal]
        found = await self.resolve(target.host, target.port)
        addresses: list[IPAddress] = []
        for text in found:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise WebhookRefused(f"{target.host} resolved to {text!r}") from None
            self.policy.check_address(target, address)
            addresses.append(address)
        if not addresses:
            raise OSError(f"{target.host} resolves to no address")
        return target, addresses

    async def _post(
        self,
        url: str,
        checked: tuple[_Target, list[IPAddress]],
        body: bytes,
        headers: dict[str, str],
    ) -> None:
        """One POST, connected to the checked addresses only; `_Answered` unless a 2xx."""
        target, addresses = checked
        connector = aiohttp.TCPConnector(
            resolver=_PinnedResolver(target.host, addresses), use_dns_cache=False, force_close=True
        )
        async with (
            aiohttp.ClientSession(connector=connector, trust_env=False) as session,
            session.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            ) as resp,
        ):
            if not 200 <= resp.status < 300:
                raise _Answered(resp.status)

    async def close(self, grace_s: float = 2.0) -> None:
        """Give notifications in flight `grace_s` to finish, cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


class _Answered(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _redacted(url: str) -> str:
    """The URL without credentials or query, which may carry secrets, for logs."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(malformed URL)"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
