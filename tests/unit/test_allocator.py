"""The allocator setting bulk loads share (``audiapro.allocator``), observed in glibc's own accounting."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from audiapro import allocator, backfill, importing

GLIBC = platform.libc_ver()[0] == "glibc"

#: In a fresh interpreter: free a 4 MB block (glibc then raises its mmap threshold to 4 MB unless it
#: is pinned), allocate 1 MB and print how many bytes glibc holds in mappings of their own.
_PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from audiapro.allocator import pin_mmap_threshold

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "pin":
        assert pin_mmap_threshold() is True
        assert pin_mmap_threshold() is True  # applied once, the same answer after
    libc.free(libc.malloc(4 << 20))
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(1 << 20)
    print(libc.mallinfo2().hblkhd - before)
    libc.free(block)
    """
)


def _mapped_bytes_of_a_1_mb_block(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return int(done.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="the mmap threshold is a glibc setting")
def test_pinned_threshold_keeps_mb_buffers_in_mappings_returned_on_free() -> None:
    assert _mapped_bytes_of_a_1_mb_block("pin") >= 1 << 20
    # Without the pin, glibc raised its threshold after the 4 MB free: the block came from the heap.
    assert _mapped_bytes_of_a_1_mb_block("default") == 0


def test_imports_and_backfills_share_the_one_process_wide_setting() -> None:
    assert importing.pin_mmap_threshold is allocator.pin_mmap_threshold
    assert backfill.pin_mmap_threshold is allocator.pin_mmap_threshold
    assert not hasattr(backfill, "MMAP_THRESHOLD_BYTES")  # one home for the setting


def test_other_c_libraries_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    allocator.pin_mmap_threshold.cache_clear()
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda *_: pytest.fail("touched a non-glibc C library"))
    try:
        assert allocator.pin_mmap_threshold() is False
    finally:
        allocator.pin_mmap_threshold.cache_clear()
