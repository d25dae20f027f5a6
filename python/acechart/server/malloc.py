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

`tune(threshold)` fixes the threshold (`mallopt(M_MMAP_THRESHOLD)`, which also
stops it from rising). It is called once by `acechart serve` and `acechart demo`
before the service starts, never on import: a notebook's process is its owner's.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

__all__ = ["tune"]

logger = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3
"""`M_MMAP_THRESHOLD` of glibc's `<malloc.h>`."""


def tune(threshold: int) -> bool:
    """Fix glibc's mmap threshold at `threshold` bytes; True when it was set.

    Nothing happens for 0, off glibc (musl, macOS), or when the process was
    started with `MALLOC_MMAP_THRESHOLD_` (its owner chose already).
    """
    if threshold <= 0 or not sys.platform.startswith("linux"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, threshold) != 1:
        logger.warning("mallopt refused an mmap threshold of %d bytes", threshold)
        return False
    return True
