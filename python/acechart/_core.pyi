"""Type stubs of the Rust core (checked against the binary by mypy.stubtest)."""

from collections.abc import Sequence
from typing import Any, Literal, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BlockDecodeError",
    "PageParseError",
    "ParsedPage",
    "__version__",
    "aggregate",
    "decode_block",
    "downsample",
    "encode_block",
    "encode_csv",
    "encode_head",
    "encode_json",
    "encode_msgpack",
    "encode_part",
    "encode_tail",
    "parse_page",
    "rollup_aggregates",
    "sort_dedup",
]

__version__: str

_I32 = npt.NDArray[np.int32]
_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]
_Agg = dict[str, npt.NDArray[np.int64] | npt.NDArray[np.float64]]
_Item = tuple[str, _I64, _F64] | tuple[str, _Agg]
_Series = Sequence[_Item]
_Format = Literal["json", "msgpack", "csv"]
_Layout = Literal["rows", "columns"]

class BlockDecodeError(ValueError):
    """Bytes that are not a readable cache block (raised by `decode_block`)."""

class PageParseError(ValueError):
    """An origin page that does not parse (raised by `parse_page`)."""

@final
class ParsedPage:
    """One parsed origin page as columns."""

    @property
    def names(self) -> list[str]: ...
    @property
    def point_index(self) -> _I32: ...
    @property
    def ts(self) -> _I64: ...
    @property
    def values(self) -> _F64: ...
    @property
    def has_more(self) -> bool: ...
    @property
    def next_cursor(self) -> str | None: ...
    @property
    def non_numeric(self) -> int: ...
    def __len__(self) -> int: ...

def parse_page(data: bytes, points: list[str] | None = None) -> ParsedPage: ...
def sort_dedup(point_index: _I32, ts: _I64, values: _F64) -> tuple[_I32, _I64, _F64]: ...
def aggregate(ts: _I64, values: _F64, bucket_ms: int, origin_ms: int = 0) -> _Agg: ...
def rollup_aggregates(aggregates: _Agg, bucket_ms: int, origin_ms: int = 0) -> _Agg: ...
def downsample(
    ts: _I64, values: _F64, n_out: int, method: Literal["minmaxlttb", "m4"] = "minmaxlttb"
) -> _I64: ...
def encode_json(metadata: dict[str, Any], series: _Series) -> bytes: ...
def encode_msgpack(
    metadata: dict[str, Any], series: _Series, layout: Literal["rows", "columns"] = "rows"
) -> bytes: ...
def encode_csv(series: _Series) -> bytes: ...
def encode_head(
    format: _Format,
    metadata: dict[str, Any],
    n_series: int,
    layout: _Layout = "rows",
    *,
    aggregated: bool = False,
) -> bytes: ...
def encode_part(format: _Format, item: _Item, index: int, layout: _Layout = "rows") -> bytes: ...
def encode_tail(format: _Format) -> bytes: ...
def encode_block(point: str, ts: _I64, values: _F64, covered: npt.NDArray[np.int64]) -> bytes: ...
def decode_block(data: bytes) -> tuple[str, _I64, _F64, npt.NDArray[np.int64]]: ...
