"""Where a process's memory is, sampled over time: resident size, glibc's heap, Python's blocks.

``MemorySampler(path).start()`` appends one JSON line to ``path`` every ``interval_s`` from a
daemon thread, until ``stop()``::

    {"t": 12.5, "rss_mb": 70.1, "heap_mb": 18.0, "heap_in_use_mb": 14.6, "heap_free_mb": 3.4,
     "mmapped_mb": 2.1, "python_blocks": 301207}

``heap_*`` come from glibc's ``mallinfo2`` (all arenas; absent where the C library has none):
``heap_free_mb`` is memory freed inside the heap that glibc keeps, the fragmentation that long
runs accumulate; ``mmapped_mb`` is the large blocks mapped on their own. ``python_blocks`` is
``sys.getallocatedblocks()``. Used by ``bench.connector_process --memory-samples``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

MB = 1024 * 1024


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost",
    )]


def _mallinfo2() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    function = getattr(ctypes.CDLL(name), "mallinfo2", None)
    if function is None:  # not glibc, or glibc before 2.33
        return None
    function.restype = _MallInfo2
    function.argtypes = []
    return function


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """A process's own peak resident size in MB: ``VmHWM``, the high-water mark of its address
    space (not ``ru_maxrss``, which Linux carries across fork and exec); None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return None


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class MemorySampler:
    def __init__(self, path: str | Path, interval_s: float = 0.5) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        self._mallinfo2 = _mallinfo2()
        self._started = time.monotonic()
        self._stopping = threading.Event()

    def sample(self) -> dict[str, float | int]:
        figures: dict[str, float | int] = {
            "t": round(time.monotonic() - self._started, 2),
            "rss_mb": round(_rss_bytes() / MB, 1),
        }
        if self._mallinfo2 is not None:
            info = self._mallinfo2()
            figures.update({
                "heap_mb": round(info.arena / MB, 1),
                "heap_in_use_mb": round(info.uordblks / MB, 1),
                "heap_free_mb": round(info.fordblks / MB, 1),
                "mmapped_mb": round(info.hblkhd / MB, 1),
            })
        figures["python_blocks"] = sys.getallocatedblocks()
        return figures

    def start(self) -> None:
        threading.Thread(target=self._run, name="memory-samples", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        with self.path.open("a") as out:
            while not self._stopping.is_set():
                out.write(json.dumps(self.sample()) + "\n")
                out.flush()
                self._stopping.wait(self.interval_s)
