"""glibc's allocator tuned for a service that builds and drops large arrays.

glibc serves an allocation of at least its mmap threshold with a private
mapping, returned to the kernel when freed; smaller ones come from heaps that
keep freed memory. The threshold starts at 128 KiB but rises to the size of
any mapped chunk that is freed (up to 32 MiB), so after the first large answer
every later block decode (a month of samples is 350 KiB a column, and its
decompression buffers more) lands on the heaps, across one heap per worker
thread, and stays resident after it is freed. Measured on the warm raw year of
50 points (`benches.bench_memory`): a streamed answer peaked at 2.1x its
arrays' bytes with the rising threshold, 1.2x with it fixed.

The fixed threshold sits just above 256 KiB, not at glibc's starting 128 KiB:
asyncio reads every socket into a fresh 256 KiB `bytes` (its transports'
`max_size`), shrunk to what arrived. Under the threshold that buffer is mapped,
remapped and unmapped on every request read, three system calls and a page
fault each (`strace -c` on `benches.bench_http`: one of each per cached answer,
the ceiling none). Block buffers of a month (350 KiB) are still mapped.

`tune(threshold, trim_threshold)` fixes the threshold (`mallopt(M_MMAP_THRESHOLD)`,
which also stops it from rising) and the trim threshold. Fixing the first leaves
the second at glibc's 128 KiB, and a cached answer's body (90 KB for three
one-minute points over a day) freed at the top of the heap then gave the heap
back and faulted it in again on every request: two page faults and two `brk`
calls per request, 10% of a cached answer's CPU (`benches.bench_http`). It is
called once by `acechart serve` and `acechart demo` before the service starts,
never on import: a notebook's process is its owner's.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

__all__ = ["tune"]

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
"""`M_TRIM_THRESHOLD` and `M_MMAP_THRESHOLD` of glibc's `<malloc.h>`."""


def tune(threshold: int, trim_threshold: int = 0) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes and its trim threshold (free
    memory at the heap's top kept before it is given back) at `trim_threshold`; True
    when either was set.

    A value of 0 leaves its setting alone, as do a platform without glibc (musl,
    macOS) and a process started with `MALLOC_MMAP_THRESHOLD_` or
    `MALLOC_TRIM_THRESHOLD_` (its owner chose already).
    """
    if not sys.platform.startswith("linux"):
        return False
    wanted = [
        (_M_MMAP_THRESHOLD, threshold, "MALLOC_MMAP_THRESHOLD_", "an mmap"),
        (_M_TRIM_THRESHOLD, trim_threshold, "MALLOC_TRIM_THRESHOLD_", "a trim"),
    ]
    wanted = [w for w in wanted if w[1] > 0 and w[2] not in os.environ]
    if not wanted:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = False
    for option, value, _, what in wanted:
        if mallopt(option, value) == 1:
            applied = True
        else:
            logger.warning("mallopt refused %s threshold of %d bytes", what, value)
    return applied
