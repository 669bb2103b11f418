"""Helpers shared by the benchmark scripts: timing and a description of the machine."""

from __future__ import annotations

import os
import platform
import time
from typing import Callable


def best_time(func: Callable[[], object], repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls (seconds): the least disturbed by other load."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def machine() -> str:
    import numba
    import numpy

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {numpy.__version__}, "
        f"numba {numba.__version__} ({numba.get_num_threads()} threads)"
    )
