"""Large freed CPU buffers kept for reuse instead of handed back to the operating system.

glibc serves blocks above its mmap threshold with fresh pages and unmaps them on free; torch's CPU
allocator asks glibc for every tensor, and a pass of IG2 or a forward over a 30 000-word vocabulary
allocates and frees tens of MiB (logits, a batch's activations) each time. Every pass then
page-faults and zeroes those pages again: on the small model of ``bench/sweep_bench.py`` that was
≈ 60 000 minor faults and 8–10 % of a unit's time, and the page zeroing is memory traffic that two
workers on neighbouring cores contend for. Raising the mmap threshold to glibc's upper bound and the
trim threshold well above a pass's working set keeps those buffers in the heap.

The setting is process-wide and only changes where freed memory goes (the process keeps its peak
resident size instead of shrinking after each pass); compute processes opt in — the CLI and sweep
workers — while a notebook or the app keep glibc's defaults unless they call it."""

from __future__ import annotations

import ctypes
import functools
import sys

MMAP_THRESHOLD_BYTES = 32 * 2**20  # the largest value glibc accepts on 64-bit Linux
TRIM_THRESHOLD_BYTES = 2**30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters of <malloc.h>

@functools.cache
def reuse_freed_buffers() -> bool:
    """Apply once per process; True when the C library is glibc and took both settings (elsewhere —
    macOS, musl — nothing changes and False is returned)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 — only glibc has it (and mallopt's meaning)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                                  TRIM_THRESHOLD_BYTES))
