"""One frozen `Settings` object, built from `ACECHART_*` environment variables.

Settings are read and validated once at the entry point and passed down; no
module reads the environment on its own. Each field's env var is its name in
upper case with the `ACECHART_` prefix (`origin_concurrency` ->
`ACECHART_ORIGIN_CONCURRENCY`). Add a field with a default and a docstring
comment and it is configurable: the parser follows the field's type.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import math
import os
import socket
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import platformdirs

from acechart.errors import ConfigError

__all__ = ["ENV_PREFIX", "SIMULATOR_ENV_PREFIX", "VALID_PAGE_SIZES", "Settings"]

logger = logging.getLogger(__name__)

ENV_PREFIX = "ACECHART_"
SIMULATOR_ENV_PREFIX = ENV_PREFIX + "SIMULATOR_"
"""Variables of the simulator's own settings (`acechart.simulator.settings`), not of `Settings`."""

#: The page sizes the ACE API accepts for `/timeseries/paginated` (others: 400). The origin
#: client's settings check against it, and the simulator imports it from here.
VALID_PAGE_SIZES: tuple[int, ...] = (
    3,
    10,
    50,
    100,
    500,
    1000,
    5000,
    10000,
    50000,
    100000,
    300000,
    500000,
)

#: Tokens and the sites each may read, `{token: frozenset(sites)}` (`"*"`: every site); `_parse`
#: reads it from `tok1=site_a,site_b;tok2=*` (the simulator's `ACECHART_SIMULATOR_TOKENS`).
TokenMap = Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class Settings:
    """Every tunable of acechart, validated on construction.

    Build it with `Settings.from_env()`; tests and notebooks may pass keyword
    overrides (`Settings.from_env({}, origin_concurrency=2)`) which win over env.
    """

    # --- the ACE origin -------------------------------------------------------
    origin_url: str = "https://flightdeck.aceiot.cloud/api"
    """Base URL of the ACE API (or of `acechart simulate`), without a trailing slash."""

    origin_concurrency: int = 8
    """Most origin requests in flight at once, shared by every fetch of one client."""

    origin_max_attempts: int = 5
    """Attempts per origin request (first try included) on 429, 5xx, timeouts, drops."""

    origin_timeout_s: float = 120.0
    """Whole-request timeout for one origin page, body included."""

    origin_connect_timeout_s: float = 10.0
    """Timeout to open a connection to the origin."""

    origin_read_timeout_s: float = 30.0
    """Longest silence while reading an origin response, so a stalled body fails fast."""

    origin_page_size: int = 500_000
    """Samples per origin page; must be one of the API's valid sizes (largest by default)."""

    origin_window_s: int = 86_400
    """Length of the time windows a large range is split into and fetched in parallel."""

    origin_max_pages: int = 100_000
    """Hard bound on pages per window: past it the fetch fails loudly, never truncates."""

    origin_max_url_chars: int = 6_000
    """Longest `point_names` list in one URL; longer point lists are split into groups."""

    origin_strategy: str = "auto"
    """How gaps are fetched: `auto` (the cheaper of the two by estimated origin samples),
    `per_point` (`/points/{name}/timeseries`), `site_wide` (one paginated pass over the whole
    site, every point harvested), or `filtered` (paginated with `point_names`: only for an
    origin that honours the filter, which the real API does not)."""

    origin_point_window_s: int = 30 * 86_400
    """Length of the windows one point's range is split into on the per-point route."""

    origin_request_cost_samples: int = 20_000
    """What one origin request costs in the strategy choice, in samples (its latency and
    overhead): per point pays it per point and window, site-wide per page."""

    origin_estimate_samples_per_s: float = 100_000.0
    """Origin download rate (samples a second) assumed before any fetch has been measured;
    after that, an exponentially weighted average of measured fetches (per strategy) is used
    to estimate how long a query's origin fetch takes."""

    origin_estimate_round_s: float = 0.5
    """Seconds one wave of concurrent origin requests is assumed to take (latency) before any
    fetch has been measured; measured the same way afterwards."""

    origin_harvest: bool = True
    """Keep every point of a site-wide pass in the block store, not only the requested
    ones: those bytes were paid for, and any later query in that range is then a hit."""

    origin_harvest_buffer_samples: int = 4_000_000
    """Samples a site-wide pass holds before writing them into blocks (about 20 bytes
    each), so a pass over a large site and long range stays bounded in memory."""

    origin_site_page_size: int = 100_000
    """Page size of site-wide passes (one of the API's sizes): smaller than
    `origin_page_size`, because every window in flight holds a page body of about 150
    bytes per row, and a site-wide pass has many windows in flight."""

    origin_retry_base_s: float = 0.25
    """First retry delay; doubles per attempt (with jitter) up to `origin_retry_cap_s`."""

    origin_retry_cap_s: float = 8.0
    """Longest backoff delay between two attempts when the origin gives no Retry-After."""

    origin_retry_after_max_s: float = 60.0
    """Longest Retry-After we wait for; a longer one fails the fetch with that hint."""

    # --- storage ----------------------------------------------------------------
    data_dir: str = ""
    """Directory of the SQLite file (`acechart.db`) and of the local object store (`objects/`);
    empty: the per-user cache directory (`~/.cache/acechart` on Linux, via platformdirs)."""

    db_busy_timeout_ms: int = 5000
    """How long a SQLite statement waits for a lock held by another process."""

    database_url: str = ""
    """`postgresql://user:password@host:port/db`: keep the tables in that shared PostgreSQL
    database (every instance of a scaled-out deployment names the same one); empty: the
    SQLite file `{data_dir}/acechart.db`."""

    database_pool_size: int = 10
    """Most connections one instance keeps open to PostgreSQL (unused with SQLite)."""

    redis_url: str = ""
    """`redis://host:port/db`: run jobs (Redis Streams), rate limits and the cross-instance
    lock on origin fetches through that shared Redis; empty: all three in this process."""

    redis_prefix: str = "acechart:"
    """Prefix of every Redis key acechart writes, so deployments may share one Redis."""

    instance_id: str = ""
    """This instance's name in `/metrics` labels, job workers and lock owners; empty: the
    host name and process id (`host-1234`)."""

    job_visibility_timeout_s: float = 30.0
    """With Redis: a running job whose instance has not written a heartbeat for this long is
    taken over by another instance (XAUTOCLAIM)."""

    fetch_lock_lease_s: float = 30.0
    """With Redis: lease of the cross-instance lock on one origin fetch; renewed while the
    fetch runs, so it lapses this long after its holder dies and another instance retries."""

    object_store: str = "local"
    """Where blocks and exports live: `local` (under data_dir) or `s3` (any S3-compatible store)."""

    s3_endpoint_url: str | None = None
    """S3 endpoint (R2, MinIO, AWS); None uses AWS's default for the region."""

    s3_bucket: str = "chart-data"
    """Bucket of the S3 object store."""

    s3_region: str = "us-east-1"
    """Region of the S3 bucket (R2: `auto`)."""

    s3_access_key: str | None = None
    """S3 access key id; None falls back to the AWS credential chain."""

    s3_secret_key: str | None = None
    """S3 secret access key."""

    s3_prefix: str = ""
    """Key prefix inside the bucket, so several deployments can share one."""

    s3_addressing_style: str = "path"
    """`path` (MinIO, R2, moto) or `virtual` (AWS) bucket addressing."""

    # --- cache, catalogue and engine ---------------------------------------------
    freshness_horizon_s: int = 7200
    """Samples older than this are sealed (cached for good); newer ones are always refetched."""

    block_budget_bytes: int = 10 * 1024**3
    """Size budget of the block store; least recently used blocks beyond it are evicted."""

    sweep_interval_s: float = 300.0
    """How often expired blocks and aggregates are deleted and the size budget enforced."""

    points_refresh_s: int = 86_400
    """Age after which a site's point catalogue is refetched from the origin's configured_points."""

    # --- query limits (the service, jobs and the notebook API alike) -------------
    max_points_per_query: int = 100
    """Most points one query may name (400 beyond it)."""

    max_range_days: int = 731
    """Longest range one query may span, in days (400 beyond it)."""

    meter_reset_threshold: float = 0.0
    """A drop of a meter reading larger than this is a reset or rollover in `stat=delta`."""

    stat_lookback_s: int = 86_400
    """How far before a range `stat=delta`, `twa` and `on_time` look for the carried sample."""

    # --- jobs -------------------------------------------------------------------
    job_workers: int = 2
    """Jobs this process runs at once; 0 accepts and stores jobs but runs none here."""

    job_max_attempts: int = 3
    """Runs of a job (first included) before a retryable failure becomes final."""

    job_retry_base_s: float = 5.0
    """Wait before a job's second run; doubles per further run up to `job_retry_cap_s`."""

    job_retry_cap_s: float = 300.0
    """Longest wait between two runs of a failing job."""

    job_retry_after_s: int = 300
    """`retryAfter` of a failed job's body when the error itself suggests no wait."""

    job_result_ttl_s: int = 7 * 86_400
    """How long a finished job and its result are kept before the sweeper deletes them."""

    job_poll_interval_s: float = 1.0
    """How often event streams, and workers that just had work, re-read the job table for
    changes made outside this process (changes made in it wake them at once)."""

    job_idle_poll_max_s: float = 30.0
    """Longest pause between two looks of an idle worker: from `job_poll_interval_s` it
    doubles while nothing comes, up to this. Bounds how late a job another process put in
    a SQLite file is seen; with Redis a submission anywhere wakes the workers at once, and
    due retries and crash recovery keep their own pace."""

    job_progress_interval_s: float = 0.5
    """Shortest interval between two progress writes (and cancel checks) of a running job."""

    job_chunk_samples: int = 4_000_000
    """Samples fetched, encoded and released together: bounds a job's memory whatever its size."""

    job_token_key: str | None = None
    """Secret that encrypts callers' tokens in the job table, so a job resumed after a restart
    still reads with its owner's rights. Unset: a random key kept in `{data_dir}/job-token.key`."""

    job_webhook_secret: str | None = None
    """Key of the `X-Acechart-Signature` HMAC-SHA256 on notifyUrl calls. Unset: a random key
    generated once and kept in `{data_dir}/job-webhook.key` (give it to the receivers)."""

    job_webhook_attempts: int = 3
    """Tries of one notifyUrl call before the failure is logged and given up."""

    job_webhook_timeout_s: float = 10.0
    """Timeout of one notifyUrl call."""

    job_webhook_allow: tuple[str, ...] = ()
    """Hosts notifyUrl may name (`hooks.example.com,*.example.org`, or an address or network
    like `10.1.2.0/24`); empty: any host with public addresses. A listed host may also
    resolve to private (10/8, 172.16/12, 192.168/16) and unique-local (fc00::/7) addresses,
    for an internal receiver; loopback and link-local addresses are refused always."""

    job_webhook_allow_loopback_for_tests: bool = False
    """Test-only: let notifyUrl reach loopback addresses (127.0.0.0/8, ::1), where a test's
    receiver listens. Never set it in a deployment: any caller could make the service call
    its own host's ports."""

    # --- the HTTP service (`acechart serve`, `acechart demo`) --------------------
    server_host: str = "127.0.0.1"
    """Interface `acechart serve` listens on (0.0.0.0 for every interface)."""

    server_port: int = 8080
    """Port `acechart serve` listens on."""

    log_format: str = "json"
    """Log lines of `serve` and `demo`: `json` (one object per line, seed 7.2) or `text`."""

    log_flush_s: float = 0.05
    """INFO lines (a request line per request) are written in batches at most this late, one
    system call each; warnings and errors at once; 0: every line at once."""

    demo_token: str = "demo-token"
    """Token `acechart demo` configures in its simulator and prints for curl and the dashboard."""

    edge_cache_bytes: int = 256 * 1024**2
    """Memory budget of the in-process response cache (L1); least recently used entries go first."""

    edge_stale_while_revalidate_factor: float = 3.0
    """After its TTL an answer is served stale for TTL x this while refreshed in the background."""

    edge_stale_if_error_s: int = 86_400
    """How long past its TTL an answer may still be served, with a Warning, if the origin fails."""

    auth_cache_s: float = 300.0
    """How long the origin's yes to a (token, site) pair is trusted before it is asked again."""

    auth_refusal_cache_s: float = 30.0
    """How long the origin's no (401/403/404) to a (token, site) pair is remembered."""

    rate_limit_per_minute: int = 100
    """Requests per minute per token and endpoint (token bucket, bursts up to this); 0: no limit."""

    auth_checks_per_s: float = 20.0
    """Most questions per second to the origin about a (token, site) pair not yet confirmed,
    all callers together (bursts up to one second's worth); past it 429. 0: no bound."""

    auth_unconfirmed_per_minute: int = 30
    """Origin checks a minute of tokens the origin has never confirmed, per client address
    (so fresh tokens cannot drive origin traffic); past it 429. 0: no limit."""

    server_trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks of reverse proxies whose `X-Forwarded-For` names the client
    (`10.0.0.5,192.168.0.0/24`); from any other peer the header is ignored."""

    request_deadline_s: float = 20.0
    """Longest a data request (`/api/timeseries`, `/api/aggregations`) waits for its answer,
    origin included, before a 504 (or a stale copy); jobs have their own, longer budget."""

    small_max_samples: int = 1_000
    """Origin samples (estimated) up to which an uncached request is `small` (seed 4.1)."""

    request_budget_s: float = 10.0
    """Longest estimated origin time (measured origin throughput x the plan's gaps, for the
    chosen fetch strategy) of a request answered synchronously; a longer one is `large`: 413
    naming a range that fits, or 202 with a job when asked (`async=true`)."""

    partial_min_share: float = 0.9
    """Share of a query's range (points x time up to now) that must be cached for a partial
    answer when the origin fails: 200 with `X-Cache-Status: PARTIAL`, a Warning and
    `metadata.missing` instead of 502/504 (`partial=false` refuses per request). Above 1: never."""

    partial_wait_s: float = 1.0
    """How long a query that may be answered partially waits on an origin that is failing
    (its requests being retried) before it answers with what is cached."""

    compress_min_bytes: int = 1024
    """Smallest response body compressed (gzip, br or zstd by Accept-Encoding)."""

    malloc_mmap_threshold_bytes: int = 294_912
    """glibc only: allocations from this size are mapped and given back to the system when
    freed (fixed, so it does not rise after the first large answer; above asyncio's 256 KiB
    socket read buffer, which would otherwise be mapped on every read; see
    `server.malloc`); 0: glibc's own rising threshold."""

    malloc_trim_threshold_bytes: int = 33_554_432
    """glibc only: free memory at the top of the heap kept for reuse before it is given back
    (fixed, so a cached answer's body does not make the heap shrink and fault back in on
    every request; see `server.malloc`); 0: glibc's own."""

    stream_min_samples: int = 1_000_000
    """Values from which a synchronous answer is streamed (chunked, series by series, each
    released once sent; no ETag or Content-Length, not kept in the edge cache): samples of
    `/api/timeseries`, buckets times statistics per row of `/api/aggregations` (buckets
    alone for `layout=wide`, one value per bucket); 0: never stream."""

    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API (`https://a.example,https://b.example`; `*`: any);
    empty: no CORS headers."""

    server_max_line_bytes: int = 65_536
    """Longest request line (method and URL with its query string) the service reads, so a GET
    naming 100 long ACE point names fits; a longer one is answered 414 with a JSON body saying
    to send the parameters with POST."""

    server_max_field_bytes: int = 16_384
    """Longest request header (name and value); a longer one is answered 431 in JSON."""

    server_connection_lane: bool = True
    """Answer a repeated cached GET on the connection, before aiohttp parses it
    (`server.connection`): the same bytes, metrics and log line as the route's, at a
    fraction of the cost. Off: every request takes aiohttp's path."""

    compat_sites_ttl_s: float = 60.0
    """How long `/api/sites` keeps a token's site list from the origin before asking again."""

    compat_window_samples: int = 1_000_000
    """Samples one `/api/sites/{site}/timeseries/paginated` read takes from the caches at a
    time; the following pages of the walk are cut from that window in memory."""

    compat_page_cache_bytes: int = 128 * 1024**2
    """Memory for those windows across all walks (least recently used dropped first)."""

    proxy_max_bytes: int = 16 * 1024**2
    """Largest origin answer passed through for an `/api/` GET that acechart does not implement
    itself; a larger one is answered 502."""

    proxy_timeout_s: float = 30.0
    """Whole-request timeout of such a pass-through to the origin; a slower one is 504."""

    # ---------------------------------------------------------------------------

    def __post_init__(self) -> None:
        if not self.data_dir:
            # Never a directory in whatever the working directory happens to be.
            object.__setattr__(self, "data_dir", platformdirs.user_cache_dir("acechart"))
        if not self.instance_id:
            object.__setattr__(self, "instance_id", f"{socket.gethostname()}-{os.getpid()}")
        for check in _CHECKS:
            check(self)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `ACECHART_*` variables of `env` (default `os.environ`), then overrides.

        Raises `ConfigError` naming the variable for a value that does not parse
        or validate. An unknown `ACECHART_*` variable is logged as a warning: a
        typo should not pass unnoticed, but tooling may define its own variables.
        """
        env = os.environ if env is None else env
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in env.items():
            if not key.startswith(ENV_PREFIX) or key.startswith(SIMULATOR_ENV_PREFIX):
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name not in names:
                logger.warning("ignoring unknown setting %s", key)
                continue
            try:
                values[name] = _parse(hints[name], raw)
            except ValueError as exc:
                raise ConfigError(f"{key}={raw!r}: {exc}", setting=key) from exc
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)

    def env_name(self, name: str) -> str:
        """The environment variable that sets field `name`."""
        return ENV_PREFIX + name.upper()


def _parse(hint: Any, raw: str) -> Any:
    """Convert one env string to the field's type."""
    raw = raw.strip()
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union) and type(None) in args:
        if raw == "" or raw.lower() in ("none", "null"):
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _parse(inner, raw)
    if hint is bool:
        lowered = raw.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected a boolean (true/false)")
    if hint is int:
        return int(raw.replace("_", ""))
    if hint is float:
        return float(raw)
    if hint is str:
        return raw
    if origin is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if hint == TokenMap or origin is Mapping:
        return _parse_tokens(raw)
    raise ValueError(f"no parser for type {hint!r}")


def _parse_tokens(raw: str) -> dict[str, frozenset[str]]:
    """`tok1=site_a,site_b;tok2=*` -> `{"tok1": {"site_a", "site_b"}, "tok2": {"*"}}`."""
    tokens: dict[str, frozenset[str]] = {}
    for entry in raw.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        token, sep, sites = entry.partition("=")
        if not sep or not token.strip():
            raise ValueError(f"expected token=site,site; got {entry!r}")
        tokens[token.strip()] = frozenset(s.strip() for s in sites.split(",") if s.strip())
    return tokens


def _positive(*names: str) -> Callable[[Settings], None]:
    def check(s: Settings) -> None:
        for name in names:
            value = getattr(s, name)
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and math.isfinite(value) and value > 0
            ):
                raise ConfigError(
                    f"{s.env_name(name)} must be a positive number, got {value!r}",
                    setting=s.env_name(name),
                )

    return check


def _non_negative(*names: str) -> Callable[[Settings], None]:
    def check(s: Settings) -> None:
        for name in names:
            value = getattr(s, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(
                    f"{s.env_name(name)} must be zero or more, got {value!r}",
                    setting=s.env_name(name),
                )

    return check


def _check_urls_and_sizes(s: Settings) -> None:
    if not s.origin_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"ACECHART_ORIGIN_URL must start with http:// or https://, got {s.origin_url!r}",
            setting="ACECHART_ORIGIN_URL",
        )
    for name in ("origin_page_size", "origin_site_page_size"):
        size = getattr(s, name)
        if size not in VALID_PAGE_SIZES:
            raise ConfigError(
                f"{ENV_PREFIX}{name.upper()} must be one of {list(VALID_PAGE_SIZES)}, got {size!r}",
                setting=f"{ENV_PREFIX}{name.upper()}",
            )
    if s.object_store not in ("local", "s3"):
        raise ConfigError(
            f"ACECHART_OBJECT_STORE must be local or s3, got {s.object_store!r}",
            setting="ACECHART_OBJECT_STORE",
        )
    if s.database_url and not s.database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "ACECHART_DATABASE_URL must start with postgresql:// (or be empty for SQLite),"
            f" got a {s.database_url.split(':', 1)[0]!r} URL",
            setting="ACECHART_DATABASE_URL",
        )
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            "ACECHART_REDIS_URL must start with redis://, rediss:// or unix://"
            f" (or be empty), got a {s.redis_url.split(':', 1)[0]!r} URL",
            setting="ACECHART_REDIS_URL",
        )
    if s.redis_url and not s.job_token_key:
        raise ConfigError(
            "ACECHART_REDIS_URL is set (instances share jobs and limits), so"
            " ACECHART_JOB_TOKEN_KEY must be set too, the same on every instance:"
            " each must read the jobs and tokens the others stored",
            setting="ACECHART_JOB_TOKEN_KEY",
        )
    if s.s3_addressing_style not in ("path", "virtual"):
        raise ConfigError(
            f"ACECHART_S3_ADDRESSING_STYLE must be path or virtual, got {s.s3_addressing_style!r}",
            setting="ACECHART_S3_ADDRESSING_STYLE",
        )


def _check_server(s: Settings) -> None:
    if not 0 < s.server_port < 65536:
        raise ConfigError(
            f"ACECHART_SERVER_PORT must be a TCP port, got {s.server_port!r}",
            setting="ACECHART_SERVER_PORT",
        )
    if s.log_format not in ("json", "text"):
        raise ConfigError(
            f"ACECHART_LOG_FORMAT must be json or text, got {s.log_format!r}",
            setting="ACECHART_LOG_FORMAT",
        )
    if not s.demo_token or any(c.isspace() for c in s.demo_token):
        raise ConfigError(
            "ACECHART_DEMO_TOKEN must be a non-empty token without spaces",
            setting="ACECHART_DEMO_TOKEN",
        )
    if s.origin_strategy not in ("auto", "per_point", "site_wide", "filtered"):
        raise ConfigError(
            f"ACECHART_ORIGIN_STRATEGY must be auto, per_point, site_wide or filtered,"
            f" got {s.origin_strategy!r}",
            setting="ACECHART_ORIGIN_STRATEGY",
        )
    if s.origin_request_cost_samples < 0:
        raise ConfigError(
            "ACECHART_ORIGIN_REQUEST_COST_SAMPLES must not be negative",
            setting="ACECHART_ORIGIN_REQUEST_COST_SAMPLES",
        )
    for entry in s.server_trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(
                f"ACECHART_SERVER_TRUSTED_PROXIES: {entry!r} is not an address or network",
                setting="ACECHART_SERVER_TRUSTED_PROXIES",
            ) from None
    for pattern in s.job_webhook_allow:
        if any(c.isspace() or c in "/:@" for c in pattern) and not _is_network(pattern):
            raise ConfigError(
                f"ACECHART_JOB_WEBHOOK_ALLOW: {pattern!r} is not a host pattern or network",
                setting="ACECHART_JOB_WEBHOOK_ALLOW",
            )
    for origin in s.cors_origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ConfigError(
                f"ACECHART_CORS_ORIGINS: {origin!r} is not `*` or an http(s) origin",
                setting="ACECHART_CORS_ORIGINS",
            )


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


_CHECKS: tuple[Callable[[Settings], None], ...] = (
    # --- jobs ---
    _positive(
        "job_max_attempts",
        "job_retry_base_s",
        "job_retry_cap_s",
        "job_result_ttl_s",
        "job_poll_interval_s",
        "job_idle_poll_max_s",
        "job_progress_interval_s",
        "job_chunk_samples",
        "job_webhook_attempts",
        "job_webhook_timeout_s",
    ),
    _non_negative("job_workers", "job_retry_after_s"),
    _positive(
        "origin_concurrency",
        "origin_max_attempts",
        "origin_timeout_s",
        "origin_connect_timeout_s",
        "origin_read_timeout_s",
        "origin_window_s",
        "origin_max_pages",
        "origin_max_url_chars",
        "origin_point_window_s",
        "origin_harvest_buffer_samples",
        "origin_retry_base_s",
        "origin_retry_cap_s",
        "db_busy_timeout_ms",
        "database_pool_size",
        "job_visibility_timeout_s",
        "fetch_lock_lease_s",
        "freshness_horizon_s",
        "block_budget_bytes",
        "sweep_interval_s",
        "max_points_per_query",
        "max_range_days",
        "edge_stale_while_revalidate_factor",
        "auth_cache_s",
        "points_refresh_s",
        "request_budget_s",
        "origin_estimate_samples_per_s",
        "origin_estimate_round_s",
    ),
    _non_negative(
        "edge_cache_bytes",
        "edge_stale_if_error_s",
        "auth_refusal_cache_s",
        "rate_limit_per_minute",
        "small_max_samples",
        "partial_min_share",
        "partial_wait_s",
        "compress_min_bytes",
        "stream_min_samples",
        "malloc_mmap_threshold_bytes",
        "malloc_trim_threshold_bytes",
        "log_flush_s",
        "origin_retry_after_max_s",
        "meter_reset_threshold",
        "stat_lookback_s",
    ),
    _check_urls_and_sizes,
    _check_server,
    _positive(
        "server_max_line_bytes",
        "server_max_field_bytes",
        "compat_window_samples",
        "proxy_max_bytes",
        "proxy_timeout_s",
    ),
    _non_negative("compat_sites_ttl_s", "compat_page_cache_bytes"),
    _positive("request_deadline_s"),
    _non_negative("auth_checks_per_s", "auth_unconfirmed_per_minute"),
)
