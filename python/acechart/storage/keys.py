"""Object key layout: the seed's bucket structure (section 2.1), adapted to blocks.

```
timeseries/{site}/{point_hash}/{period}.blk   one point's raw samples for one UTC period
exports/{job_id}/{filename}                   files produced by an export job
charts/{chart_id}/config.json                 a saved chart (the seed's layout)
charts/{chart_id}/thumbnail.png               its rendered thumbnail
```

Points are addressed by a SHA-256 prefix of their full name, not by the name
itself: ACE names are long hierarchical paths full of `/` and dots that would
nest directories and break key rules. The seed's 8-hex-char hash was of a whole
point *list*; here a hash names one point, and 16 hex chars (64 bits) keep the
chance of any two points of a site colliding negligible (about 3e-8 with a
million points, by the birthday bound n^2 / 2^65). A collision would serve one
point's data as another's, which is why this is never a 32-bit string hash.
"""

from __future__ import annotations

import hashlib

from acechart.storage.objects import InvalidKey, validate_key

__all__ = [
    "POINT_HASH_CHARS",
    "block_key",
    "chart_key",
    "chart_prefix",
    "export_key",
    "export_prefix",
    "point_hash",
    "site_blocks_prefix",
]

#: Hex characters of SHA-256 kept in a point hash (16 = 64 bits).
POINT_HASH_CHARS = 16


def point_hash(name: str) -> str:
    """The first 16 hex chars of SHA-256 of the UTF-8 full point name."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:POINT_HASH_CHARS]


def block_key(site: str, point: str, period: str) -> str:
    """`timeseries/{site}/{point_hash}/{period}.blk` for one point's block of one period.

    `period` is the block store's label of a UTC period (for example `2025-01`);
    it must be one key segment.
    """
    return validate_key(
        f"{site_blocks_prefix(site)}{point_hash(point)}/{_segment(period, 'period')}.blk"
    )


def site_blocks_prefix(site: str) -> str:
    """The listing prefix holding every block of one site."""
    return f"timeseries/{_segment(site, 'site')}/"


def export_key(job_id: str, filename: str) -> str:
    """`exports/{job_id}/{filename}` for one file written by an export job."""
    return validate_key(f"{export_prefix(job_id)}{_segment(filename, 'filename')}")


def export_prefix(job_id: str) -> str:
    """The listing prefix holding every file of one export job."""
    return f"exports/{_segment(job_id, 'job id')}/"


def chart_key(chart_id: str, filename: str) -> str:
    """`charts/{chart_id}/{filename}`: `config.json` or `thumbnail.png` of a saved chart."""
    return validate_key(f"{chart_prefix(chart_id)}{_segment(filename, 'filename')}")


def chart_prefix(chart_id: str) -> str:
    """The listing prefix holding every object of one saved chart."""
    return f"charts/{_segment(chart_id, 'chart id')}/"


def _segment(value: str, what: str) -> str:
    """`value` if it is exactly one valid key segment, else `InvalidKey` naming `what`."""
    if not value or "/" in value:
        raise InvalidKey(value, f"{what} must be non-empty and contain no '/'")
    validate_key(value)
    return value
