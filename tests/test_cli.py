"""The installed `acechart` command: version, clear one-line failures, query and export."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from acechart import __version__
from tests.real_processes import free_port, start_process

COMMAND = Path(sys.executable).with_name("acechart")
SITE = "ses_falls_city"
NOW = "2025-01-01T00:00:00Z"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACECHART_")}
    env.update(extra)
    return env


def acechart(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    port = free_port()
    with start_process(
        ["simulate", "--port", str(port)], clean_env(ACECHART_SIMULATOR_NOW=NOW), port
    ):
        yield f"http://127.0.0.1:{port}"


def test_the_console_script_is_installed_and_has_a_version() -> None:
    assert COMMAND.exists(), "pip install should put the acechart command beside python"
    run = acechart("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"acechart {__version__}"


def test_a_busy_port_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = acechart("serve", "--port", str(port), env=clean_env(ACECHART_DATA_DIR=str(tmp_path)))
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"acechart: port {port} is in use; pass --port or set ACECHART_SERVER_PORT"
    )
    assert "Traceback" not in run.stderr


def test_common_flags_work_after_the_subcommand_and_errors_name_the_flag() -> None:
    run = acechart("serve", "--log-level", "WARNING", "--port", "70000")
    assert run.returncode == 2
    assert run.stderr.startswith("acechart: --port: ") and "ACECHART_SERVER_PORT" in run.stderr


def test_query_prints_csv_and_json_and_writes_parquet(origin: str, tmp_path: Path) -> None:
    env = clean_env(ACECHART_TOKEN="demo-token", ACECHART_DATA_DIR=str(tmp_path / "c"))
    points = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-c",
                (
                    "import acechart.simulator.datagen as d;import json;"
                    f"print(json.dumps(list(d.DataSource(({SITE!r},),1,36).sites[{SITE!r}].names[:2])))"
                ),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    common = [
        SITE,
        *points,
        "--start",
        "2024-12-30",
        "--end",
        "2024-12-31",
        "--origin",
        origin,
        "--no-progress",
    ]
    as_csv = acechart("query", *common, "--format", "csv", env=env)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = as_csv.stdout.splitlines()
    assert rows[0] == "time,point,value" and len(rows) > 1000
    as_json = acechart("query", *common, "--format", "json", env=env)
    document = json.loads(as_json.stdout)
    assert [s["name"] for s in document["series"]] == points
    assert document["metadata"]["totalSamples"] == len(rows) - 1
    out = tmp_path / "q.parquet"
    assert (
        acechart("query", *common, "--format", "parquet", "-o", str(out), env=env).returncode == 0
    )
    assert pq.read_table(out).num_rows == len(rows) - 1
    table = acechart("query", *common, "--format", "table", env=env)
    assert table.returncode == 0 and points[0] in table.stdout

    exported = tmp_path / "e.arrow"
    run = acechart("export", *common, "--format", "arrow", "-o", str(exported), env=env)
    assert run.returncode == 0, run.stderr
    with exported.open("rb") as f:
        read = ipc.open_stream(io.BytesIO(f.read())).read_all()
    assert read.num_rows == len(rows) - 1
    assert pl.from_arrow(read)["point"].unique().sort().to_list() == sorted(points)


def test_query_without_a_token_says_how_to_give_one(origin: str) -> None:
    run = acechart("query", SITE, "x", "--origin", origin)
    assert run.returncode == 2 and "--token" in run.stderr and "ACECHART_TOKEN" in run.stderr
