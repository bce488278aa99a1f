"""Where a result came from: the machine, the software, the date and the command (for reports/)."""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from pathlib import Path


def _cpuinfo() -> dict:
    """The first processor's fields of /proc/cpuinfo (Linux); empty elsewhere."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux) and its core count."""
    name = _cpuinfo().get("model name") or platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores"


def cpu_id() -> str:
    """Vendor, family, model and stepping ("AuthenticAMD family 25 model 17 stepping 1"): the model name
    alone ("AMD EPYC") covers generations with different vector units."""
    info = _cpuinfo()
    if "vendor_id" in info:
        return (f"{info['vendor_id']} family {info.get('cpu family', '?')} model {info.get('model', '?')} "
                f"stepping {info.get('stepping', '?')}")
    return " ".join(filter(None, [platform.machine(), info.get("cpu implementer"), info.get("cpu part")])) or "unknown"


def _torch_libraries(config: str) -> dict:
    """The BLAS and oneDNN builds named in ``torch.__config__.show()``."""
    import re

    found = {"blas": None, "onednn": None}
    for line in config.splitlines():
        line = line.strip(" -")
        if "Math Kernel Library" in line:
            version = re.search(r"Version ([\d.]+)", line)
            found["blas"] = found["blas"] or f"MKL {version.group(1) if version else line}"
        elif "OpenBLAS" in line or "BLAS_INFO" in line and not found["blas"]:
            blas = re.search(r"BLAS_INFO=(\w+)", line)
            found["blas"] = found["blas"] or (blas.group(1) if blas else line)
        elif "MKL-DNN" in line or "oneDNN" in line:
            version = re.search(r"(v[\d.]+)(?: \(Git Hash (\w{7}))?", line)
            found["onednn"] = found["onednn"] or (
                f"oneDNN {version.group(1)}" + (f" ({version.group(2)})" if version.group(2) else "")
                if version else line)
    return found


# The environment variables that change which CPU code torch, oneDNN and MKL run (and so the bits).
CODE_PATH_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")

# The fields of machine() that decide whether a run repeats bit for bit (README, "Bit for bit").
FINGERPRINT = ("cpu", "cpu_id", "cpu_capability", "code_path", "threads", "torch", "blas", "onednn", "gpu",
               "gpu_driver")


def machine() -> dict:
    """A description of this machine and its software, as plain values; ``fingerprint`` of it decides bits."""
    import torch

    # threads: torch's CPU batch norm splits its sums by thread, so a CPU run's bits depend on the count;
    # cpu_capability: the vector code torch's own kernels run (AVX512, AVX2, ...), chosen by CPU
    info = {"cpu": cpu_model(), "cpu_id": cpu_id(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "code_path": {name: os.environ[name] for name in CODE_PATH_VARIABLES if name in os.environ},
            "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
            **_torch_libraries(torch.__config__.show())}
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if native_build():
        info["native_isa"] = native_build()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_driver"] = _nvidia_driver()
    return info


def native_build() -> str | None:
    """The native CPU kernel's instruction-set level and threading ("x86-64-v4, openmp"), if it is loaded."""
    native = sys.modules.get("rramk.kernels.native")
    if native is None or not native.library.cache_info().currsize:
        return None
    built = native.library().build_info
    return f"{built['level']}, {built['threading']}"


def _nvidia_driver() -> str | None:
    import subprocess

    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20)
        return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else None
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def fingerprint(info: dict) -> dict:
    """The fields of a machine description that decide bit-for-bit reproducibility (missing: None)."""
    return {key: info.get(key) for key in FINGERPRINT}


def fingerprint_differences(recorded: dict, here: dict) -> list[str]:
    """Why a run recorded on ``recorded`` may not repeat bit for bit on ``here`` (both machine()
    dicts): each fingerprint field that differs or that ``recorded`` lacks; empty: same bits expected.
    A field that neither records (no GPU on either) is no difference."""
    reasons = []
    for key in FINGERPRINT:
        there, mine = recorded.get(key), here.get(key)
        if key in ("gpu", "gpu_driver") and not there and not mine:
            continue  # a CPU run on a CPU
        if key not in recorded:
            reasons.append(f"{key} not recorded")
        elif there != mine:
            reasons.append(f"{key} {there!r}, here {mine!r}")
    return reasons


def machine_line(info: dict | None = None) -> str:
    """One line: the GPU (if any), the CPU with its identity and vector code, and the versions."""
    info = info or machine()
    parts = [f"GPU {info['gpu']}" + (f" (driver {info['gpu_driver']})" if info.get("gpu_driver") else "")
             ] if info.get("gpu") else []
    cpu = f"CPU {info['cpu']}"
    if info.get("cpu_id"):
        cpu += f" ({info['cpu_id']}, torch vector code {info.get('cpu_capability')}"
        cpu += "".join(f", {k}={v}" for k, v in (info.get("code_path") or {}).items()) + ")"
    parts.append(cpu + (f", {info['threads']} torch threads" if info.get("threads") else ""))
    versions = f"Python {info['python']}, torch {info['torch']}, triton {info.get('triton')}"
    if info.get("blas"):
        versions += f", {info['blas']}, {info.get('onednn')}"
    parts.append(versions)
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


def code_version() -> dict:
    """rramk's version and, in a git checkout, its commit and whether files differ from it: which code made a
    run (a table that mixes code versions can say so)."""
    import subprocess

    from rramk import __version__

    root = Path(__file__).resolve().parents[1]
    info = {"version": __version__}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode == 0:
            # results and reports are not code: a study's worktree may link them elsewhere
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                    ".", ":(exclude)reports", ":(exclude)runs"], capture_output=True, text=True,
                                   timeout=10)
            info |= {"commit": commit.stdout.strip(), "modified": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    return info


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
