"""The CPU's feature flags, read without torch (the commands choose torch's code path before it loads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def cpu_features() -> set[str]:
    """The CPU's feature flags, lower case (Linux: /proc/cpuinfo; macOS: sysctl); empty if unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    if sys.platform == "darwin":
        names = ("machdep.cpu.features", "machdep.cpu.leaf7_features")
        result = subprocess.run(["sysctl", "-n", *names], capture_output=True, text=True)
        # macOS spells them AVX2, AVX512F, SSE4.1, BMI1...
        return {f.lower().replace(".", "_") for f in result.stdout.split()}
    return set()
