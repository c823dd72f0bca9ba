"""The machine a bench run measured on: hardware, versions and load (other jobs make timings noisy)."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path

import torch


def load_average() -> str:
    """1/5/15-minute load averages (other processes competing for the cores make timings noisy)."""
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux
        return "unknown"


def machine_info(device: torch.device) -> dict[str, str]:
    """CPU model (from /proc/cpuinfo), cores, memory, GPU name, torch version and threads, python,
    date and captum version: the "machine" rows of a run."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
        mem_s = f"{mem:.1f} GiB"
    except (OSError, ValueError, IndexError):
        mem_s = "unknown"
    return {
        "cpu": cpu,
        "cores": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "memory": mem_s,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "none",
        "torch": torch.__version__,
        "torch threads": str(torch.get_num_threads()),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "captum": metadata.version("captum"),
    }
