"""Deterministic, vectorised sample generation for the simulator.

No data is stored: the value of point p at time t is a pure function of
(seed, site, p, t) built from a 64-bit hash (splitmix64), so any range of any
point is produced on demand, the same request always yields the same samples,
and tests can ask for the expected samples directly (`DataSource.expected`).

Every function here works on whole NumPy arrays; the only Python loops run over
points or over a handful of digit columns, never over samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from acechart.simulator.sitegen import SiteSpec, build_site

__all__ = ["DataSource", "Rows", "SiteTable", "mix64"]

I64 = NDArray[np.int64]
U64 = NDArray[np.uint64]
F64 = NDArray[np.float64]

BUCKET_MS = 300_000
"""Width of the API's aggregated buckets (`raw_data=false`): five minutes."""

_KINDS = {"analog": 0, "counter": 1, "binary": 2, "multistate": 3}
_STYLES = {"string": 0, "number": 1, "words": 2, "bool": 3}

# Vocabulary entries every table starts with: bare JSON literals and the empty string.
_TRUE, _FALSE, _NULL, _EMPTY = 0, 1, 2, 3
_BASE_VOCAB: tuple[tuple[str, bool], ...] = (
    ("true", False),
    ("false", False),
    ("null", False),
    ("", True),
)
_WORD_VALUES = {"true": 1.0, "on": 1.0, "active": 1.0, "false": 0.0, "off": 0.0, "inactive": 0.0}

# Salts keep the hash streams of different purposes independent.
_SALT_SEG, _SALT_DAY, _SALT_DRIFT, _SALT_WHITE, _SALT_SLOT, _SALT_FLAKY = (
    np.uint64((0x51ED2701A3C5F1B1 + i * 0x2545F4914F6CDD1D) % (1 << 64)) for i in range(6)
)
_INV53 = 1.0 / float(1 << 53)
_PARAMS = ("base", "daily", "drift", "noise", "occ", "rate", "lo", "hi")
_BASE, _DAILY, _DRIFT, _NOISE, _OCC, _RATE, _LO, _HI = range(len(_PARAMS))
_MINUTES = np.arange(1440) / 1440.0
_DAILY_SHAPE = np.cos(2.0 * np.pi * (_MINUTES - 15.0 / 24.0))
"""The day's cycle per local minute: 1 at 15:00, -1 at 03:00."""
_FRAC_HOUR = np.arange(3600) / 3600.0
_EASE = _FRAC_HOUR * _FRAC_HOUR * (3.0 - 2.0 * _FRAC_HOUR)
"""Smoothstep between hourly drift knots, per second of the hour."""
_SCALE = 10.0 ** np.arange(19, dtype=np.float64)
_EPOCH_2020_S = 1_577_836_800
_POINT_OUTAGE_SEG_S = 21_600
_POINT_OUTAGE_P = 0.03
_SITE_OUTAGE_P = 0.04
_FLAKY_P = 0.004


def mix64(x: U64) -> U64:
    """splitmix64's finaliser over a uint64 array (wrapping arithmetic, no warnings)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _unit(h: U64) -> F64:
    """Hash -> uniform float in [0, 1)."""
    return (h >> np.uint64(11)).astype(np.float64) * _INV53


def _hash(keys: U64, counter: I64, salt: np.uint64) -> U64:
    """One independent uniform stream per (point key, integer counter, purpose).

    The counter is spread by an odd multiplier before mixing, so neighbouring
    counters of one key land far apart; keys are themselves 64-bit hashes.
    """
    spread = counter.astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93) + salt
    return mix64(keys ^ spread)


@dataclass(frozen=True)
class Rows:
    """Generated samples in columns; `value` is what `_core.parse_page` should read.

    A row is written as a decimal `vint / 10**decimals` when `word < 0`, else as
    vocabulary entry `word` of its table; `quoted` says whether inside quotes.
    Its instant is `t_ms` plus `sub_us` microseconds (0..999, written only in
    the realistic time format).
    """

    t_ms: I64
    idx: NDArray[np.int32]
    vint: I64
    decimals: NDArray[np.int8]
    word: NDArray[np.int16]
    quoted: NDArray[np.bool_]
    value: F64
    sub_us: NDArray[np.int16]

    def __len__(self) -> int:
        return len(self.t_ms)

    def take(self, sel: NDArray[np.intp] | slice) -> Rows:
        """The rows at `sel` (indices or a slice), every column alike."""
        return Rows(
            self.t_ms[sel],
            self.idx[sel],
            self.vint[sel],
            self.decimals[sel],
            self.word[sel],
            self.quoted[sel],
            self.value[sel],
            self.sub_us[sel],
        )


class SiteTable:
    """A site's points as parallel arrays (struct of arrays) for vectorised generation.

    `naive_us`: times are written as the real API writes them (naive, with
    microseconds), and points of one cadence share their collection instants.
    """

    def __init__(self, site: SiteSpec, naive_us: bool = False) -> None:
        self.site = site
        self.naive_us = naive_us
        points = site.points
        self.names: tuple[str, ...] = tuple(p.name for p in points)
        self.index: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        self.key = np.array([p.key for p in points], dtype=np.uint64)
        self.site_key = np.array([site.key], dtype=np.uint64)
        self.cadence_ms = np.array([p.cadence_s * 1000 for p in points], dtype=np.int64)
        phase_us = np.array([p.phase_us for p in points], dtype=np.int64)
        self.phase_ms = phase_us // 1000
        self.sub_us = (phase_us % 1000).astype(np.int16)
        self.kind = np.array([_KINDS[p.model.kind] for p in points], dtype=np.int8)
        self.style = np.array([_STYLES[p.model.style] for p in points], dtype=np.int8)
        self.flaky = np.array([p.flaky for p in points], dtype=np.bool_)
        self.decimals = np.array([p.model.decimals for p in points], dtype=np.int8)
        self.param_matrix = np.array(
            [[float(getattr(p.model, name)) for name in _PARAMS] for p in points]
        ).reshape(len(points), len(_PARAMS))
        self.quoted = self.style != _STYLES["number"]
        self.p_on_occ = np.array([p.model.p_on_occ for p in points])
        self.p_on_unocc = np.array([p.model.p_on_unocc for p in points])
        vocab = list(_BASE_VOCAB)
        word_base = []
        offsets: dict[tuple[str, ...], int] = {}
        for p in points:
            words = p.model.words
            if words and words not in offsets:
                offsets[words] = len(vocab)
                vocab += [(w, True) for w in words]
            word_base.append(offsets.get(words, -1))
        self.word_base = np.array(word_base, dtype=np.int16)
        self.vocab: tuple[tuple[str, bool], ...] = tuple(vocab)
        self.vocab_quoted = np.array([q for _, q in vocab], dtype=np.bool_)
        self.vocab_value = np.array([_WORD_VALUES.get(w.lower(), math.nan) for w, _ in vocab])

    @cached_property
    def all_points(self) -> NDArray[np.int32]:
        """Catalogue indices of every point, in order."""
        return np.arange(len(self.names), dtype=np.int32)

    def select(self, names: list[str] | None) -> NDArray[np.int32]:
        """Sorted catalogue indices of `names` (unknown names ignored); None means all."""
        if names is None:
            return self.all_points
        found = sorted({self.index[n] for n in names if n in self.index})
        return np.array(found, dtype=np.int32)

    # --- time grid and outages ------------------------------------------------

    def grid(self, sel: NDArray[np.int32], lo_ms: int, hi_ms: int) -> tuple[I64, NDArray[np.int32]]:
        """Sample times in [lo_ms, hi_ms] of the points `sel`, gaps removed.

        Returned point-major (all of the first point's times ascending, then the
        next point's): what bucketing wants; pagination sorts by time itself.
        """
        if hi_ms < lo_ms or len(sel) == 0:
            return np.empty(0, np.int64), np.empty(0, np.int32)
        cad = self.cadence_ms[sel]
        phase = self.phase_ms[sel]
        k0 = -((phase - lo_ms) // cad)
        k1 = (hi_ms - phase) // cad
        counts = np.maximum(k1 - k0 + 1, 0)
        total = int(counts.sum())
        rep = np.repeat(np.arange(len(sel), dtype=np.int64), counts)
        first = np.cumsum(counts) - counts
        offset = np.arange(total, dtype=np.int64) - first[rep]
        t = phase[rep] + (k0[rep] + offset) * cad[rep]
        keep = ~self._missing(sel, rep, t, lo_ms, hi_ms)
        return t[keep], sel[rep[keep]]

    def _missing(
        self, sel: NDArray[np.int32], rep: I64, t_ms: I64, lo_ms: int, hi_ms: int
    ) -> NDArray[np.bool_]:
        """True where a sample of point `sel[rep]` at `t_ms` is lost to an outage.

        Points drop out now and then (about 3 % of 6-hour spans hold one outage of
        5 minutes to 3 hours), and the whole site goes dark on about 4 % of days
        for 10 minutes to 2 hours, as when a gateway reboots. Outages are drawn
        once per (point, span) and per day, then looked up per sample.
        """
        seg_ms = _POINT_OUTAGE_SEG_S * 1000
        seg_lo, seg_hi = lo_ms // seg_ms, hi_ms // seg_ms
        segs = np.arange(seg_lo, seg_hi + 1, dtype=np.int64)
        h = _hash(self.key[sel][:, None], segs[None, :], _SALT_SEG)
        hit = _unit(h) < _POINT_OUTAGE_P
        begin = segs * seg_ms + (_unit(mix64(h ^ np.uint64(1))) * seg_ms).astype(np.int64)
        length = 300_000 + (_unit(mix64(h ^ np.uint64(2))) ** 2 * 10_500_000).astype(np.int64)
        begin = np.where(hit, begin, 0).ravel()
        end = np.where(hit, begin.reshape(hit.shape) + length, 0).ravel()
        pair = rep * len(segs) + (t_ms // seg_ms - seg_lo)
        out: NDArray[np.bool_] = (t_ms >= begin[pair]) & (t_ms < end[pair])

        day_ms = 86_400_000
        day_lo, day_hi = lo_ms // day_ms, hi_ms // day_ms
        days = np.arange(day_lo, day_hi + 1, dtype=np.int64)
        hs = _hash(np.broadcast_to(self.site_key, days.shape), days, _SALT_DAY)
        site_hit = _unit(hs) < _SITE_OUTAGE_P
        if site_hit.any():
            sbegin = days * day_ms + (_unit(mix64(hs ^ np.uint64(1))) * day_ms).astype(np.int64)
            slength = 600_000 + (_unit(mix64(hs ^ np.uint64(2))) * 6_600_000).astype(np.int64)
            sbegin = np.where(site_hit, sbegin, 0)
            send = np.where(site_hit, sbegin + slength, 0)
            day = t_ms // day_ms - day_lo
            out |= (t_ms >= sbegin[day]) & (t_ms < send[day])
        return out

    # --- values -----------------------------------------------------------------

    def values(self, idx: NDArray[np.int32], t_ms: I64) -> Rows:
        """The samples of (point idx, t) pairs: numbers, words and the value a parser reads.

        Every row gets the analog signal; counters, binary and multistate points
        are then computed on their own (few) rows. Per-hour and per-15-minute
        draws are made once per (point, slot) and time-of-day shapes come from
        tables, so a row costs a handful of gathers and one hash.
        """
        n = len(t_ms)
        t_s = t_ms // 1000
        hour_no = t_s // 3600
        occupied = self._occupied(hour_no)
        p = self.param_matrix[idx]
        knots = self._pair_unit(idx, hour_no, 1, _SALT_DRIFT)
        n0, n1 = knots
        drift = n0 + (n1 - n0) * _EASE[t_s % 3600]
        white = _unit(_hash(self.key[idx], t_s, _SALT_WHITE))
        local_minute = (t_s + self.site.tz_offset_s) % 86_400 // 60
        analog = (
            p[:, _BASE]
            + p[:, _DAILY] * _DAILY_SHAPE[local_minute]
            + p[:, _DRIFT] * (drift * 2.0 - 1.0)
            + p[:, _NOISE] * (white * 2.0 - 1.0)
            + p[:, _OCC] * occupied
        )
        np.clip(analog, p[:, _LO], p[:, _HI], out=analog)
        decimals = self.decimals[idx]
        scale = _SCALE[decimals]
        vint = np.rint(analog * scale).astype(np.int64)
        word = np.full(n, -1, dtype=np.int16)
        kind = self.kind[idx]

        rows = np.flatnonzero(kind == _KINDS["counter"])
        if len(rows):
            since = np.maximum(t_s[rows] - _EPOCH_2020_S, 0).astype(np.float64)
            omega = 2.0 * np.pi / 86_400.0
            wobble = p[rows, _DAILY] * np.sin(omega * since) / omega
            energy = p[rows, _BASE] + p[rows, _RATE] * (since + wobble) / 3600.0
            vint[rows] = np.floor(energy * scale[rows]).astype(np.int64)

        rows = np.flatnonzero(kind >= _KINDS["binary"])
        if len(rows):
            ridx = idx[rows]
            (slot,) = self._pair_unit(ridx, t_s[rows] // 900, 0, _SALT_SLOT)
            p_first = np.where(occupied[rows], self.p_on_occ[ridx], self.p_on_unocc[ridx])
            second = p_first + (1.0 - p_first) * 0.85
            state = np.where(slot < p_first, 1, np.where(slot < second, 2, 3))
            binary = kind[rows] == _KINDS["binary"]
            on = slot < p_first
            vint[rows] = np.where(binary, on, state)
            style = self.style[ridx]
            offset = np.where(binary, np.where(on, 0, 1), state - 1)
            chosen = np.where(style == _STYLES["words"], self.word_base[ridx] + offset, -1)
            chosen = np.where(style == _STYLES["bool"], np.where(on, _TRUE, _FALSE), chosen)
            word[rows] = chosen

        rows = np.flatnonzero(self.flaky[idx])
        if len(rows):
            u = _unit(_hash(self.key[idx[rows]], t_s[rows], _SALT_FLAKY))
            bad = u < _FLAKY_P
            word[rows[bad]] = np.where(u[bad] < _FLAKY_P / 2, _NULL, _EMPTY)

        quoted = self.quoted[idx]
        value = vint / scale
        rows = np.flatnonzero(word >= 0)
        if len(rows):
            quoted[rows] = self.vocab_quoted[word[rows]]
            value[rows] = self.vocab_value[word[rows]]
        return Rows(t_ms, idx, vint, decimals, word, quoted, value, self.sub_us[idx])

    def _occupied(self, hour_no: I64) -> NDArray[np.bool_]:
        """Weekdays 06:00-18:00 local time, per UTC hour number (the offset is whole hours)."""
        lo = int(hour_no.min()) if len(hour_no) else 0
        hours = np.arange(lo, int(hour_no.max()) + 1 if len(hour_no) else lo, dtype=np.int64)
        local = hours + self.site.tz_offset_s // 3600
        weekday = (local // 24 + 3) % 7
        hour = local % 24
        table = (weekday < 5) & (hour >= 6) & (hour < 18)
        return table[hour_no - lo]

    def _pair_unit(
        self, idx: NDArray[np.int32], counter: I64, ahead: int, salt: np.uint64
    ) -> list[F64]:
        """Uniform draws of (point, counter + k) for k = 0..ahead, once per distinct pair.

        Hourly and 15-minute draws repeat across many samples; a small table of
        (points present) x (counter range) is hashed and then indexed, unless it
        would be larger than the samples themselves.
        """
        n = len(idx)
        if n == 0:
            return [np.empty(0) for _ in range(ahead + 1)]
        c_lo = int(counter.min())
        span = int(counter.max()) - c_lo + 1 + ahead
        present = np.zeros(len(self.names), dtype=np.bool_)
        present[idx] = True
        points = np.flatnonzero(present)
        if len(points) * span > n * (ahead + 1):
            keys = self.key[idx]
            return [_unit(_hash(keys, counter + k, salt)) for k in range(ahead + 1)]
        lut = np.zeros(len(self.names), dtype=np.int64)
        lut[points] = np.arange(len(points))
        counters = np.arange(c_lo, c_lo + span, dtype=np.int64)
        table = _unit(_hash(self.key[points][:, None], counters[None, :], salt)).ravel()
        at = lut[idx] * span + (counter - c_lo)
        return [table[at + k] for k in range(ahead + 1)]

    # --- pages --------------------------------------------------------------------

    def buckets(
        self, sel: NDArray[np.int32], lo_ms: int, hi_ms: int, start_ms: int, end_ms: int
    ) -> Rows:
        """Five-minute means (`raw_data=false`) of buckets starting in [lo_ms, hi_ms].

        A bucket averages the numeric samples of [start_ms, end_ms] inside it and
        is stamped with its start; buckets with no numeric sample are left out.
        """
        b_lo = lo_ms - lo_ms % BUCKET_MS
        t, idx = self.grid(sel, max(start_ms, b_lo), min(end_ms, hi_ms + BUCKET_MS - 1))
        rows = self.values(idx, t)
        bucket = t // BUCKET_MS
        keep = ~np.isnan(rows.value)
        bucket, idx, val = bucket[keep], idx[keep], rows.value[keep]
        if len(val) == 0:
            return _empty_rows()
        change = np.flatnonzero((idx[1:] != idx[:-1]) | (bucket[1:] != bucket[:-1])) + 1
        starts = np.concatenate(([0], change))
        sums = np.add.reduceat(val, starts)
        counts = np.diff(np.concatenate((starts, [len(val)])))
        mean = sums / counts
        vint = np.rint(mean * 1000.0).astype(np.int64)
        n = len(starts)
        return Rows(
            t_ms=bucket[starts] * BUCKET_MS,
            idx=idx[starts],
            vint=vint,
            decimals=np.full(n, 3, dtype=np.int8),
            word=np.full(n, -1, dtype=np.int16),
            quoted=np.ones(n, dtype=np.bool_),
            value=vint / 1000.0,
            sub_us=np.zeros(n, dtype=np.int16),
        )

    def next_rows(
        self,
        sel: NDArray[np.int32],
        start_ms: int,
        end_ms: int,
        after: tuple[int, int] | None,
        limit: int,
        raw: bool = True,
    ) -> Rows:
        """Up to `limit` rows of [start_ms, end_ms] ordered by (time, point) after `after`.

        `after` is the (time, point index) of the last row already sent. Only a
        slice of time a little longer than `limit` rows needs is generated; it
        doubles until enough rows are found or the range ends, so a page costs
        about its own size however long the range.
        """
        if len(sel) == 0 or end_ms < start_ms:
            return _empty_rows()
        lo = start_ms if after is None else max(start_ms, after[0])
        if raw:
            rate = float(np.sum(1.0 / self.cadence_ms[sel]))
            slack = int(self.cadence_ms[sel].max())
        else:
            rate = len(sel) / BUCKET_MS
            slack = BUCKET_MS
        span = int(limit / rate * 1.2) + slack
        n_points = len(self.names)
        while True:
            hi = min(lo + span, end_ms)
            if raw:
                t, idx = self.grid(sel, lo, hi)
                rows = None
            else:
                rows = self.buckets(sel, lo, hi, start_ms, end_ms)
                t, idx = rows.t_ms, rows.idx
            order_key = t * n_points + idx
            if after is not None:
                after_key = after[0] * n_points + after[1]
                fresh = order_key > after_key
                order_key, t, idx = order_key[fresh], t[fresh], idx[fresh]
                if rows is not None:
                    rows = rows.take(np.flatnonzero(fresh))
            if len(t) >= limit or hi >= end_ms:
                break
            span *= 2
        if len(order_key) > limit:
            first = np.argpartition(order_key, limit - 1)[:limit]
            order = first[np.argsort(order_key[first], kind="stable")]
        else:
            order = np.argsort(order_key, kind="stable")
        if rows is not None:
            return rows.take(order)
        return self.values(idx[order], t[order])

    def all_rows(self, sel: NDArray[np.int32], start_ms: int, end_ms: int) -> Rows:
        """Every raw sample of [start_ms, end_ms], ordered by (time, point)."""
        t, idx = self.grid(sel, start_ms, end_ms)
        order = np.argsort(t * len(self.names) + idx, kind="stable")
        return self.values(idx[order], t[order])


def _empty_rows() -> Rows:
    return Rows(
        np.empty(0, np.int64),
        np.empty(0, np.int32),
        np.empty(0, np.int64),
        np.empty(0, np.int8),
        np.empty(0, np.int16),
        np.empty(0, np.bool_),
        np.empty(0, np.float64),
        np.empty(0, np.int16),
    )


class DataSource:
    """The simulated world of one configuration: its sites and their data.

    `realistic`: collection runs shared per cadence and naive microsecond times,
    as the real API; else one whole-second phase per point and `Z` times.

    `expected(site, point, start_ms, end_ms)` gives exactly the samples the
    simulator serves for that point and range (both ends included), for tests
    that check a client fetched every sample once.
    """

    def __init__(
        self,
        sites: tuple[str, ...],
        seed: int,
        vav_count: int,
        *,
        realistic: bool = True,
        cadence_s: int | None = None,
    ) -> None:
        self.seed = seed
        self.sites: dict[str, SiteTable] = {}
        for i, name in enumerate(sites):
            spec = build_site(
                name, i + 1, seed, vav_count, shared_runs=realistic, cadence_s=cadence_s
            )
            self.sites[name] = SiteTable(spec, naive_us=realistic)
        self.point_sites: dict[str, str] = {
            point: name for name, table in self.sites.items() for point in table.names
        }

    def expected(self, site: str, point: str, start_ms: int, end_ms: int) -> Rows:
        """Raw samples of one point in [start_ms, end_ms] (inclusive), in time order."""
        table = self.sites[site]
        sel = np.array([table.index[point]], dtype=np.int32)
        return table.all_rows(sel, start_ms, end_ms)
