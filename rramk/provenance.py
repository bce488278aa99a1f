"""Where a result came from: the machine, the software, the date and the command (for reports/)."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux) and its core count."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def machine() -> dict:
    """A description of this machine and its software, as plain values."""
    import torch

    # threads: torch's CPU batch norm splits its sums by thread, so a CPU run's bits depend on the count
    info = {"cpu": cpu_model(), "threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__}
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def machine_line(info: dict | None = None) -> str:
    """One line: the GPU (if any), the CPU and the versions."""
    info = info or machine()
    parts = [f"GPU {info['gpu']}"] if info.get("gpu") else []
    parts.append(f"CPU {info['cpu']}" + (f", {info['threads']} torch threads" if info.get("threads") else ""))
    parts.append(f"Python {info['python']}, torch {info['torch']}, triton {info.get('triton')}")
    return "; ".join(parts)


def command_line() -> str:
    """The command that is running, as a user would type it (python -m module args...)."""
    argv = list(sys.argv)
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        module = spec.name[:-9] if spec.name.endswith(".__main__") else spec.name
        return "python -m " + " ".join([module] + [shlex.quote(a) for a in argv[1:]])
    return " ".join(shlex.quote(a) for a in argv)


def today() -> str:
    return datetime.date.today().isoformat()


def header(title: str, command: str | None = None, info: dict | None = None) -> str:
    """Markdown header of a generated report: title, then machine, date and command."""
    return (
        f"# {title}\n\n"
        f"- Machine: {machine_line(info)}\n"
        f"- Date: {today()}\n"
        f"- Command: `{command or command_line()}`\n"
    )
