"""acechart.connect: the notebook API wired from settings, on local and S3 storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import acechart
from acechart.errors import BadRequest
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, origin_settings
from tests.storage_fixtures import MotoS3

DAY = 86_400_000


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_connect_queries_and_caches(
    sim: Sim, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    extra: dict[str, Any] = {"data_dir": str(tmp_path)}
    if backend == "s3":
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        extra.update(
            object_store="s3",
            s3_endpoint_url=moto.endpoint_url,
            s3_bucket=moto.bucket,
            s3_access_key="testing",
            s3_secret_key="testing",
            s3_prefix=f"rt-{tmp_path.name}/",
        )
    settings = origin_settings(sim.url, **extra)
    point = sim.site.names[5]
    async with await acechart.connect(TOKEN, settings) as ace:
        ace.runtime.engine.clock = lambda: NOW_MS
        cold = await ace.query(SITE, [point], NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
        warm = await ace.query(SITE, [point], NOW_MS - 10 * DAY, NOW_MS - 9 * DAY)
        assert cold.provenance.cache_status == "MISS" and warm.provenance.cache_status == "HIT"
        np.testing.assert_array_equal(cold.series[0].ts, warm.series[0].ts)
        assert len(warm.series[0]) > 0
        with pytest.raises(BadRequest, match="interval"):
            await ace.query(SITE, [point], "2024-01-01", "2024-01-02", interval="2min")
        await ace.runtime.sweep_once()
    if backend == "local":
        assert (tmp_path / "acechart.db").exists() and any((tmp_path / "objects").rglob("*.blk*"))
