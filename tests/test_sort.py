"""sort_dedup against a pandas reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from acechart import _core
from tests import reference


@st.composite
def columns(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(0, 300))
    p = draw(hnp.arrays(np.int32, n, elements=st.integers(-3, 5)))
    t = draw(hnp.arrays(np.int64, n, elements=st.integers(-(2**62), 2**62) | st.integers(-5, 5)))
    v = draw(hnp.arrays(np.float64, n, elements=st.floats(allow_nan=True)))
    return p, t, v


@settings(max_examples=300)
@given(columns())
def test_matches_pandas(cols: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    got = _core.sort_dedup(*cols)
    want = reference.sort_dedup(*cols)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == w.dtype


def test_last_duplicate_wins_and_already_sorted() -> None:
    p = np.array([0, 0, 1, 0], dtype=np.int32)
    t = np.array([10, 20, 10, 10], dtype=np.int64)
    v = np.array([1.0, 2.0, 3.0, 4.0])
    gp, gt, gv = _core.sort_dedup(p, t, v)
    assert (
        gp.tolist() == [0, 0, 1] and gt.tolist() == [10, 20, 10] and gv.tolist() == [4.0, 2.0, 3.0]
    )
    sp, st_, sv = _core.sort_dedup(gp, gt, gv)
    assert sp.tolist() == gp.tolist() and st_.tolist() == gt.tolist() and sv.tolist() == gv.tolist()


def test_empty_and_errors() -> None:
    e = _core.sort_dedup(np.array([], np.int32), np.array([], np.int64), np.array([], np.float64))
    assert all(len(a) == 0 for a in e)
    with pytest.raises(ValueError, match="same length"):
        _core.sort_dedup(np.zeros(2, np.int32), np.zeros(3, np.int64), np.zeros(2))
    with pytest.raises(TypeError):
        _core.sort_dedup(np.zeros(2, np.int64), np.zeros(2, np.int64), np.zeros(2))  # type: ignore[arg-type]
    strided = np.zeros(4, np.int64)[::2]
    with pytest.raises(TypeError, match="contiguous"):
        _core.sort_dedup(np.zeros(2, np.int32), strided, np.zeros(2))
