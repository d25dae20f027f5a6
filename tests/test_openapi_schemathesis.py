"""The OpenAPI document is valid and exact: schemathesis against the live service.

A bounded, repeatable run (a fixed seed, derandomized, a fixed number of
examples per operation) of every operation of `/api/openapi.json` against the
real service over the realistic simulator, with the demo token. Every check
schemathesis has must pass: no 5xx, every status, content type, header and body
as documented, every request the document allows accepted and every request it
forbids refused.

Some rules hold between parameters, which OpenAPI cannot state (`end` after
`start` and within the range limit, `downsample` only with `maxPoints`, a
`notifyUrl` the webhook policy refuses, a site for a site's public charts); the
document states them in words.
A 400 naming the parameter of a rule the request breaks (`expected_400`) is
then no "valid request rejected"; every other check still applies to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import available_timezones

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import positive_data_acceptance

from acechart.server.openapi import build_document
from tests.conftest import TOKEN, origin_settings
from tests.live_service import LiveService, live_service

# No per-token limit (a 429 is documented, but would hide the answers behind it), and
# jobs are stored but not run, so the run stays short and nothing runs after it.
OVERRIDES: dict[str, Any] = {"rate_limit_per_minute": 0, "job_workers": 0}
SETTINGS = origin_settings("http://127.0.0.1:1", **OVERRIDES)
DOCUMENT = build_document(SETTINGS)
EXAMPLES_PER_OPERATION = 12
CONFIG = schemathesis.Config.from_dict({"seed": 15, "generation": {"deterministic": True}})
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
AUTH = {"X-ACE-Token": TOKEN, "Authorization": f"Bearer {TOKEN}"}
DAY_MS = 86_400_000
ZONES = available_timezones() | {"UTC"}


def test_the_document_is_valid_openapi() -> None:
    validate(DOCUMENT)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with live_service(tmp_path_factory.mktemp("schemathesis"), **OVERRIDES) as service:
        yield service


def test_the_live_document_is_the_one_tested(live: LiveService) -> None:
    import requests

    served = requests.get(f"{live.url}/api/openapi.json", timeout=10).json()
    assert served == json.loads(json.dumps(build_document(live.settings)))
    assert served["paths"] == json.loads(json.dumps(DOCUMENT["paths"]))


def _ms(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def expected_400(case: schemathesis.Case) -> set[str]:
    """Parameters a 400 may name because `case` breaks a rule between parameters."""
    given: dict[str, Any] = {**(case.query or {})}
    if isinstance(case.body, dict):
        given.update(case.body)
    named: set[str] = set()
    start = _ms(given.get("start", given.get("start_time", given.get("startTime"))))
    end = _ms(given.get("end", given.get("end_time", given.get("endTime"))))
    if (start is not None and end is not None) and (
        end <= start or end - start > SETTINGS.max_range_days * DAY_MS
    ):
        named |= {"end", "end_time", "endTime"}
    if given.get("downsample") is not None:
        max_points = given.get("maxPoints")
        if max_points is None or (given["downsample"] == "m4" and str(max_points) == "3"):
            named.add("maxPoints")
    zone = given.get("tz")
    if zone is not None and not (isinstance(zone, str) and (zone == "site" or zone in ZONES)):
        named.add("tz")
    if given.get("scope") == "public" and not str(given.get("site") or "").strip():
        named.add("site")  # a site's public charts need the site
    saved = given.get("query")
    if case.operation.path.startswith("/api/charts") and isinstance(saved, dict):
        # A saved chart's range may be relative (`-7d`, `now`) and its zone any IANA
        # name: what each resolves to is checked, not its spelling.
        named |= {"query.start", "query.end", "query.tz"}
    interval = given.get("interval", given.get("aggregation"))
    default_raw = case.operation.path != "/api/aggregations"
    if given.get("stat") not in (None, "avg") and (
        interval == "raw" or (interval is None and default_raw)
    ):
        named.add("stat")
    layout = given.get("layout")
    fmt = given.get("format")
    if (layout == "columns" and fmt not in ("msgpack", "binary")) or (
        layout == "wide" and fmt != "arrow"
    ):
        named.add("layout")
    metadata = given.get("metadata")
    if isinstance(metadata, dict) and metadata.get("notifyUrl") is not None:
        named.add("metadata.notifyUrl")
    return named


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: schemathesis.Case, live: LiveService) -> None:
    response = case.call(base_url=live.url, headers=AUTH, timeout=30)
    if response.status_code == 400 and _names_one_of(response.content, expected_400(case)):
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
    else:
        case.validate_response(response)


def _names_one_of(body: bytes, allowed: set[str]) -> bool:
    """Whether a 400's body names one of `allowed` (a HEAD's, which has none, any)."""
    if not allowed:
        return False
    if not body:
        return True
    return json.loads(body).get("parameter") in allowed
