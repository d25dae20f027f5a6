"""deploy/: the compose file (docker does not run here, so it is read, not started).

Its acechart services must be configured the way tests/test_scale_out.py configures the
two instances it proves things with: every ACECHART_* name must be a real setting (a
typo would be ignored with a warning and the instance would quietly run embedded),
every setting those tests share must be there, and the balancer must reach both.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from acechart.settings import ENV_PREFIX, Settings
from tests.backends import Backend
from tests.storage_fixtures import MotoS3
from tests.test_scale_out import instance_env

DEPLOY = Path(__file__).parent.parent / "deploy"
INSTANCES = ("acechart-a", "acechart-b")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_the_services_are_two_instances_and_their_backends() -> None:
    services = compose()["services"]
    assert set(services) >= {*INSTANCES, "nginx", "postgres", "redis", "minio"}
    upstream = re.findall(r"server\s+([\w-]+):(\d+)", (DEPLOY / "nginx.conf").read_text())
    assert sorted(upstream) == [(name, "8080") for name in INSTANCES]
    for name in INSTANCES:
        assert services[name]["environment"]["ACECHART_SERVER_PORT"] == "8080"


def test_every_acechart_variable_is_a_real_setting() -> None:
    settings = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    for name in INSTANCES:
        env = compose()["services"][name]["environment"]
        names = {k for k in env if k.startswith(ENV_PREFIX)}
        assert names and names <= settings, names - settings


def test_the_instances_share_what_the_two_instance_tests_share(tmp_path: Path) -> None:
    moto = MotoS3("http://127.0.0.1:1", "bucket", None)  # type: ignore[arg-type]
    backend = Backend("shared", "postgresql://x@127.0.0.1/x", "redis://127.0.0.1:1/0", "p:")
    tested = set(instance_env(backend, moto, "p/", "http://127.0.0.1:1", "a", tmp_path))
    tested = {k for k in tested if k.startswith(ENV_PREFIX)}
    # Tuned for a quick test, not part of what makes a deployment shared.
    test_only = {
        "ACECHART_ORIGIN_RETRY_BASE_S",
        "ACECHART_JOB_POLL_INTERVAL_S",
        "ACECHART_JOB_PROGRESS_INTERVAL_S",
        "ACECHART_JOB_CHUNK_SAMPLES",
        "ACECHART_REQUEST_BUDGET_S",
    }
    a, b = (compose()["services"][n]["environment"] for n in INSTANCES)
    assert tested - test_only <= set(a) == set(b)
    shared = tested - test_only - {"ACECHART_INSTANCE_ID", "ACECHART_DATA_DIR"}
    assert {k: a[k] for k in shared} == {k: b[k] for k in shared}  # the same everywhere
    assert a["ACECHART_INSTANCE_ID"] != b["ACECHART_INSTANCE_ID"]
