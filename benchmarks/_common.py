"""Helpers shared by the benchmark scripts (tables, timing, machine line).

The scripts run as ``python benchmarks/<method>.py``, so this module is
importable as ``_common`` from them.
"""

import platform
import time

import numpy as np
import torch


def best_time(func, repeat):
    """Best wall time of ``repeat`` calls of ``func`` and its last output."""
    best, out = np.inf, None
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = func()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def table(header, rows):
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine(device):
    """One line naming the processor (or GPU) and torch's thread count."""
    if str(device).startswith("cuda"):
        return f"GPU: {torch.cuda.get_device_name()}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if "model name" in l)
    except (OSError, StopIteration):
        pass
    return f"CPU: {cpu}, {torch.get_num_threads()} torch thread(s)"
