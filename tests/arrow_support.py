"""Comparing Arrow IPC bodies by content: streamed and whole answers have the same
schema and rows but not always the same batches (so not the same bytes)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa


def arrow_table(body: bytes) -> pa.Table:
    return pa.ipc.open_stream(io.BytesIO(body)).read_all()


def same_table(got: bytes, want: bytes, *, nonempty: bool = False) -> None:
    """The same schema (metadata included) and rows: NaN equal to NaN, nulls in the same
    places (a `wide` column's), `point` by value."""
    a, b = arrow_table(got), arrow_table(want)
    assert a.schema.equals(b.schema, check_metadata=True)
    assert a.num_rows == b.num_rows
    assert a.num_rows > 0 or not nonempty
    for name in a.column_names:
        x, y = a.column(name), b.column(name)
        if name == "point":
            assert x.to_pylist() == y.to_pylist()
            continue
        assert x.is_null().to_pylist() == y.is_null().to_pylist(), name
        np.testing.assert_array_equal(x.drop_null().to_numpy(), y.drop_null().to_numpy())
