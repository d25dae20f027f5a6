"""Write the seed corpus of every fuzz target: `python -m tests.fuzz.seeds` (committed
under `tests/fuzz/corpus/<target>/`; regression inputs are added there by hand)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np

from acechart import _core

CORPUS = Path(__file__).with_name("corpus")


def _cursor(offset: int, stamp: str) -> bytes:
    return base64.b64encode(json.dumps({"offset": offset, "timestamp": stamp}).encode())


def seeds() -> dict[str, list[bytes]]:
    page = json.dumps(
        {
            "point_samples": [
                {
                    "name": "ses/site/AHU-1.SaTemp",
                    "value": "45.5",
                    "time": "2025-10-12T16:30:37.626470",
                },
                {"name": "ses/site/AHU-1.Fan", "value": "active", "time": "2025-10-12T16:30:37Z"},
                {"name": "ses/site/AHU-1.SaTemp", "value": 46, "time": "2025-10-12T16:35:00+00:00"},
                {"name": "ses/site/AHU-1.Alarm", "value": None, "time": "2025-10-12T16:35:00"},
                {"name": "ses/site/AHU-1.On", "value": True, "time": "2025-10-12"},
            ],
            "next_cursor": _cursor(2, "2025-10-12T16:35:00").decode(),
            "has_more": True,
        }
    ).encode()
    empty = b'{"point_samples": [], "next_cursor": null, "has_more": false}'
    ts = np.array([1_700_000_000_000, 1_700_000_060_000, 1_700_000_120_000], dtype=np.int64)
    values = np.array([1.5, np.nan, -3.0])
    covered = np.array([[1_700_000_000_000, 1_700_000_180_000]], dtype=np.int64)
    block = _core.encode_block("ses/site/AHU-1.SaTemp", ts, values, covered)
    none = _core.encode_block("p", ts[:0], values[:0], covered[:0])
    aggs = _core.aggregate(ts, np.array([1.5, 2.5, -3.0]), 3_600_000)
    hour = np.array([[1_699_999_200_000, 1_700_002_800_000]], dtype=np.int64)
    agg = _core.encode_agg_block("site", "p", "1hr", "2023-11", aggs, hour)
    return {
        "page": [
            page,
            empty,
            b'{"point_samples": [{"name": "a", "value": "1e3", "time": "2024-01-01T00:00:00.5Z"}]}',
        ],
        "block": [block, none],
        "aggblock": [agg],
        "cursor": [
            b"\x03\n"
            + _cursor(0, "2025-10-12T16:30:37")
            + b"\n"
            + _cursor(3, "2025-10-12T16:30:37"),
            b"\x02\n" + _cursor(5, "t") + b"\n" + _cursor(7, "t"),
            b"\x00\n\nabc",
        ],
        "range": [
            b"\x00\x04bytes=0-1023",
            b"\x10\x00bytes=-500",
            b"\x10\x00bytes=100-",
            b"\x10\x00items=1-2",
        ],
        "etag": [b'W/"abc", "def"\n"abc"', b'*\n"x"', b'"a"\nW/"a"'],
        "accept": [
            b"application/x-msgpack, application/json;q=0.9",
            b"application/vnd.apache.arrow.stream",
            b"text/csv;q=0.5, */*;q=0.1",
            b"gzip, br;q=1.0, zstd;q=0",
        ],
        "isotime": [
            b"2025-10-12T16:30:37.626470",
            b"2024-01-01",
            b"2024-01-01T00:00:00+05:30",
            b"2024-01-01T00:00Z",
        ],
        "query": [
            b"site=ses_falls_city&points=a,b&start=2024-01-01&end=2024-01-08",
            b"site=s&point_names=a&start_time=1700000000000&end_time=1700003600000&interval=1hr",
            b"site=s&points=a&start=2024-01-01&end=2024-01-02&maxPoints=500&downsample=m4",
        ],
    }


def main() -> None:
    for target, inputs in seeds().items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for data in inputs:
            (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


if __name__ == "__main__":
    main()
