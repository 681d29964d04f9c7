"""The machine a benchmark ran on, printed with its figures."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}\n"
        f"python {platform.python_version()} ({platform.python_implementation()})"
    )
