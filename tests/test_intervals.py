"""Interval arithmetic and block periods against brute-force references."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from acechart.cache import intervals as iv
from acechart.cache.periods import periods

ivs = st.lists(st.tuples(st.integers(-50, 50), st.integers(-50, 50)), max_size=8)


def points(intervals: list[tuple[int, int]]) -> set[int]:
    return {x for s, e in intervals for x in range(s, e)}


@given(ivs, ivs)
def test_set_operations_match_brute_force(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    na, nb = iv.normalize(a), iv.normalize(b)
    for x in (na, nb):
        assert all(s < e for s, e in x)
        assert all(x[k][1] < x[k + 1][0] for k in range(len(x) - 1))  # disjoint, not touching
    assert points(na) == points(a)
    assert points(iv.union(a, b)) == points(a) | points(b)
    assert points(iv.intersect(na, nb)) == points(a) & points(b)
    assert points(iv.subtract(na, nb)) == points(a) - points(b)
    assert iv.total(na) == len(points(a))


def test_periods_are_calendar_months() -> None:
    jan = 1_704_067_200_000  # 2024-01-01
    got = list(periods(jan - 1, jan + 31 * 86_400_000 + 29 * 86_400_000 + 1))  # 1 ms into March
    assert [name for name, _, _ in got] == ["2023-12", "2024-01", "2024-02", "2024-03"]
    assert got[1][1:] == (jan, jan + 31 * 86_400_000)
    assert all(got[k][2] == got[k + 1][1] for k in range(len(got) - 1))
    assert list(periods(jan, jan)) == []
    assert [n for n, _, _ in periods(-1, 1)] == ["1969-12", "1970-01"]
