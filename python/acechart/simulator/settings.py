"""The simulator's own settings, from `ACECHART_SIMULATOR_*` environment variables.

They live with the simulator, not in `acechart.settings.Settings`: the package
never needs them, and `Settings` leaves every `ACECHART_SIMULATOR_*` variable to
this class. Each field's variable is its name in upper case after that prefix
(`vav_count` -> `ACECHART_SIMULATOR_VAV_COUNT`); values parse as `Settings`'
do, with its own parser.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from acechart.errors import ConfigError
from acechart.settings import SIMULATOR_ENV_PREFIX, TokenMap, _parse

__all__ = ["MODES", "Mode", "SimulatorSettings"]

logger = logging.getLogger(__name__)

#: `realistic`: the ACE API as it behaves in the field (ARCHITECTURE.md, "The origin");
#: `idealised`: the API a client would wish for (point filter, distinct times, exact cursor).
Mode = Literal["realistic", "idealised"]
MODES: tuple[str, ...] = get_args(Mode)


@dataclass(frozen=True)
class SimulatorSettings:
    """Every tunable of the simulator (`acechart simulate`, the demo, tests), validated.

    Build it with `SimulatorSettings.from_env()`; keyword overrides win over env.
    """

    mode: str = "realistic"
    """`realistic` (the API as it behaves in the field: no point filter, one timestamp per
    collection run, naive microsecond times, the stalling cursor, strict enums, 500 for a bad
    token, 403 null) or `idealised` (point filter, distinct times, `Z`, an exact cursor)."""

    host: str = "127.0.0.1"
    """Interface `acechart simulate` listens on."""

    port: int = 8081
    """Port `acechart simulate` listens on."""

    seed: int = 1
    """Seed of all generated data: same seed, same bytes for the same request."""

    sites: tuple[str, ...] = ("ses_falls_city",)
    """Sites the simulator serves, each with its own generated equipment, points and place."""

    vav_count: int = 36
    """VAV boxes per simulated site (6 points each, about 100 more per site); scales the
    point catalogue (317 gives about 2,000 points)."""

    cadence_s: int | None = None
    """Collection interval of every point, in seconds; unset: each point type's own
    (30 s, 1 min, 5 min)."""

    tokens: TokenMap = field(default_factory=dict, hash=False)
    """Bearer tokens and their sites. Env: `tok1=site_a,site_b;tok2=*`. Empty: `demo-token`
    reads every site."""

    now: str | None = None
    """Fixed "now" (ISO-8601) after which no data exists; unset: the wall clock."""

    max_page_size: int = 500_000
    """Largest page the simulator returns; bigger requests get shorter pages (page limits)."""

    exact_has_more: bool = True
    """`has_more` is exact; when false it is true for every full page, as lazy APIs do."""

    latency_s: float = 0.0
    """Fixed delay before each simulator response."""

    jitter_s: float = 0.0
    """Uniform random extra delay (0..jitter) before each simulator response."""

    rate_limit_rate: float = 0.0
    """Share of requests answered 429 with Retry-After."""

    retry_after_s: float = 1.0
    """Retry-After the simulator sends with its 429 answers."""

    error_rate: float = 0.0
    """Share of requests answered 500 or 503."""

    drop_rate: float = 0.0
    """Share of responses whose connection is dropped halfway through the body."""

    slow_body_s: float = 0.0
    """Time over which each response body is trickled out in chunks (0: at once)."""

    def __post_init__(self) -> None:
        _check(self)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> SimulatorSettings:
        """Settings from `ACECHART_SIMULATOR_*` variables of `env` (default `os.environ`).

        Raises `ConfigError` naming the variable for a value that does not parse
        or validate; an unknown `ACECHART_SIMULATOR_*` variable is logged.
        """
        env = os.environ if env is None else env
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in env.items():
            if not key.startswith(SIMULATOR_ENV_PREFIX):
                continue
            name = key[len(SIMULATOR_ENV_PREFIX) :].lower()
            if name not in names:
                logger.warning("ignoring unknown simulator setting %s", key)
                continue
            try:
                values[name] = _parse(hints[name], raw)
            except ValueError as exc:
                raise ConfigError(f"{key}={raw!r}: {exc}", setting=key) from exc
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown simulator setting(s): {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)

    @staticmethod
    def env_name(name: str) -> str:
        """The environment variable that sets field `name`."""
        return SIMULATOR_ENV_PREFIX + name.upper()


def _fail(name: str, problem: str) -> ConfigError:
    var = SimulatorSettings.env_name(name)
    return ConfigError(f"{var} {problem}", setting=var)


def _check(s: SimulatorSettings) -> None:
    if s.mode not in MODES:
        raise _fail("mode", f"must be one of {', '.join(MODES)}, got {s.mode!r}")
    if not 0 < s.port < 65536:
        raise _fail("port", f"must be a TCP port, got {s.port!r}")
    for name in ("vav_count", "max_page_size"):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise _fail(name, f"must be a positive integer, got {value!r}")
    if s.cadence_s is not None and (
        isinstance(s.cadence_s, bool) or not isinstance(s.cadence_s, int) or s.cadence_s <= 0
    ):
        raise _fail("cadence_s", f"must be a positive number of seconds, got {s.cadence_s!r}")
    for name in ("seed", "latency_s", "jitter_s", "retry_after_s", "slow_body_s"):
        value = getattr(s, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise _fail(name, f"must be zero or more, got {value!r}")
    for name in ("rate_limit_rate", "error_rate", "drop_rate"):
        value = getattr(s, name)
        if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
            raise _fail(name, f"must be a share between 0 and 1, got {value!r}")
    if not s.sites:
        raise _fail("sites", "must name at least one site")
    for site in s.sites:
        if not site or any(c in site for c in " /\\?#%"):
            raise _fail("sites", f": {site!r} is not a valid site name")
    if s.now is not None:
        try:
            datetime.fromisoformat(s.now)
        except ValueError as exc:
            raise _fail("now", f": {exc}") from exc
    for token, sites in s.tokens.items():
        if not isinstance(sites, frozenset | set):
            raise _fail("tokens", f": sites of a token must be a set, got {sites!r}")
        if not token or not sites:
            raise _fail("tokens", ": every token needs a name and at least one site")
