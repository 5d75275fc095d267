"""Process-wide settings of the C allocator (glibc ``malloc``) for bulk loads.

File imports and backfills render COPY texts, frames and page bodies of a few MB per load and free
them again. glibc serves allocations from its heap below its *mmap threshold* and from a mapping of
their own above it, and after the first large free it raises that threshold (up to 32 MB). Each
load's buffers then come from the heap, whose free space glibc rarely hands back to the OS, and
the process's resident size grows with every differently sized load. Pinning the threshold keeps
such buffers in mappings that ``free`` returns at once (docs/benchmarks.md, backfill section:
about 30 MB less peak RSS for a backfill).

The setting is process-wide and permanent: it is applied once, by the first bulk load of the
process, and affects every later allocation of the process (small ones are unchanged).
"""

from __future__ import annotations

import ctypes
import functools
import platform
from typing import Final

#: Allocations this large get a mapping of their own, returned to the OS when freed.
MMAP_THRESHOLD_BYTES: Final = 128 * 1024
#: ``mallopt``'s parameter number for the threshold, from glibc's ``malloc.h``.
M_MMAP_THRESHOLD: Final = -3


@functools.cache
def pin_mmap_threshold() -> bool:
    """Pin glibc's mmap threshold to :data:`MMAP_THRESHOLD_BYTES` (once per process).

    Returns:
        Whether the threshold is pinned: ``False`` on a C library other than glibc (musl, macOS,
        Windows), where nothing is changed.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - a glibc without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on an unusable value.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
