"""Fused CPU kernels (C): the device update and the optimizer step, in place, with the reference's bits.

The CPU twin of ``rramk.kernels.weak_reset`` / ``weak_reset_adam`` (same launchers and checks:
``weak_reset_args``; source: native_weak_reset.c beside this file; the CNN's native_xnor.c and
native_cnn.c, launched by ``native_xnor`` and ``native_cnn``, go into the same library), built once per
instruction-set level with the C compiler (``CC``, else ``cc``/``gcc``/``clang``) and cached under ``RRAMK_CACHE_DIR``
(default ``~/.cache/rramk``). The level comes from the CPU's feature flags at run time (x86-64-v4 =
AVX-512, v3 = AVX2, v2, baseline; aarch64 baseline), never ``-march=native``, and is part of the
file name, so a library built for a wider instruction set is never loaded on a CPU that lacks it.
Without OpenMP (Apple's clang) it builds single-threaded; without a compiler :func:`available` is
False. Exactness: IEEE float32 in the reference's order, ``-ffp-contract=off``, no fast-math, a
correctly rounded ``sqrtf``, ``rintf`` (ties to even): the same bits at every level.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from rramk.device import streams

from .cpu_flags import cpu_features
from .weak_reset_args import check_flat, check_state_layout, model_launch_args

SOURCE = Path(__file__).with_name("native_weak_reset.c")
SOURCES = (SOURCE, *(Path(__file__).with_name(name) for name in ("native_xnor.c", "native_cnn.c")))  # one library
FLAGS = ["-O3", "-std=c11", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared"]
# Threading, best first: OpenMP threads (torch's own libgomp), else one thread (OpenMP's simd hints kept).
THREADING = (("openmp", ["-fopenmp"]), ("one thread", ["-fopenmp-simd"]), ("one thread", []))

_V2 = {"sse4_1", "sse4_2", "ssse3", "popcnt", "cx16"}
_V3 = _V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe"}
_V4 = _V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
# (level, CPU feature flags it needs, compiler flags), widest first; the psABI levels of x86-64.
X86_LEVELS = (("x86-64-v4", _V4, ["-march=x86-64-v4"]), ("x86-64-v3", _V3, ["-march=x86-64-v3"]),
              ("x86-64-v2", _V2, ["-march=x86-64-v2"]), ("x86-64", set(), []))


def isa_levels(machine: str | None = None, features: set[str] | None = None) -> list[tuple[str, list[str]]]:
    """(level, compiler flags) of every instruction-set level this CPU runs, widest first."""
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64"):
        features = cpu_features() if features is None else features
        return [(level, flags) for level, needs, flags in X86_LEVELS if needs <= features]
    return [(machine or "generic", [])]  # aarch64 and others: the compiler's baseline (NEON on aarch64)


def _defines() -> list[str]:
    """The layout constants of rramk.device.streams as -D flags (the one place that names them)."""
    rows = {f"ROW_{name.upper()}": streams.D2D_TABLE_ROWS.index(name)
            for name in ("m1", "t_star", "c1", "m2", "ln_r0", "a_rtn")}
    values = dict(STREAM_D2D=streams.STREAM_D2D, STREAM_PINK=streams.STREAM_PINK, STREAM_RTN=streams.STREAM_RTN,
                  PULSES_MASK=f"{streams.PULSES_MASK}u", RTN_BIT=streams.RTN_BIT, CYCLE_SHIFT=streams.CYCLE_SHIFT,
                  MAX_CYCLE=f"{streams.MAX_CYCLE}u", RTN_TABLE_SIZE=streams.RTN_TABLE_SIZE,
                  ROW_POWER=len(streams.D2D_TABLE_ROWS), POWER_ROWS=streams.POWER_ROWS, STEP_BITS=streams.STEP_BITS,
                  STREAM_STEP=streams.STREAM_STEP, **rows)
    assert streams.D2D_PARAMETER_BITS == {"m1": (0, 0), "t_star": (0, 10), "c1": (0, 20), "m2": (1, 0),
                                          "r0": (1, 10), "a_rtn": (1, 20)}, "native kernel bit layout out of date"
    assert streams.D2D_CYCLE_PARAMETERS == ("c1", "r0"), "native kernel cycle parameters out of date"
    return [f"-D{k}={v}" for k, v in values.items()]


def compiler() -> str:
    """The C compiler's path: ``CC``, else cc, gcc or clang on the PATH."""
    named = os.environ.get("CC")
    found = shutil.which(named) if named else (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang"))
    if not found:
        raise RuntimeError(f"the native CPU kernel needs a C compiler ({'CC=' + named + ' was not found' if named else 'none found'}): "
                           "install gcc (Debian/Ubuntu: apt install gcc) or set CC; or use backend='reference'")
    return found


def native_tuning(cc: str) -> list[str]:
    """``-mtune=`` for this CPU as the compiler names it (gcc: what ``-march=native`` implies), or nothing.

    Tuning changes scheduling and whether gathers are used, never the instruction set: it is safe on
    any CPU of the level and worth ~1.7x here (generic tuning avoids the D2D table gathers;
    reports/perf-notes.md).
    """
    result = subprocess.run([cc, "-march=native", "-Q", "--help=target"], capture_output=True, text=True)
    for line in result.stdout.splitlines():
        name, _, value = line.strip().partition(" ")
        if name == "-mtune=" and value.strip() not in ("", "generic"):
            return [f"-mtune={value.strip()}"]
    return []


def _cache_dir() -> Path:
    root = os.environ.get("RRAMK_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rramk"
    return Path(root) / "native"


def library_path(command: list[str], version: str, level: str) -> Path:
    """Where the library of this build command lives in the cache: its level in the name, and a key of
    the source, the command (flags and layout constants), the compiler's version and the machine."""
    key = hashlib.sha256(b"\0".join([*(source.read_bytes() for source in SOURCES), " ".join(command).encode(), version.encode(),
                                     platform.machine().encode(), level.encode()])).hexdigest()[:24]
    return _cache_dir() / f"weak_reset-{level}-{key}.so"


def _build(command: list[str], path: Path) -> str | None:
    """Compile into ``path`` (atomically: processes building at once each write their own); the error, if any."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        built = Path(tmp) / path.name
        result = subprocess.run([*command, *map(str, SOURCES), "-o", str(built), "-lm"], capture_output=True, text=True)
        if result.returncode != 0:
            return f"$ {' '.join(command)} ...\n{result.stderr.strip()}"
        os.replace(built, path)
    return None


def build(level: str | None = None) -> dict:
    """Build (or find in the cache) the library: {"path", "level", "threading", "command"}.

    ``level``: an instruction-set level of :func:`isa_levels` (default ``RRAMK_NATIVE_ISA``, else the
    widest this CPU runs); if the compiler refuses it, the next narrower one. OpenMP where the
    compiler has it.
    """
    levels = isa_levels()
    level = level or os.environ.get("RRAMK_NATIVE_ISA") or levels[0][0]
    names = [name for name, _ in levels]
    if level not in names:
        raise ValueError(f"RRAMK_NATIVE_ISA: expected an instruction-set level this CPU runs ({', '.join(names)}), "
                         f"got {level!r}")
    cc = compiler()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    tune = native_tuning(cc) if platform.machine().lower() in ("x86_64", "amd64") else []
    tunings = [tune, []] if tune else [[]]
    candidates = [(name, threading, [cc, *FLAGS, *threading_flags, *level_flags, *tune, *_defines()])
                  for name, level_flags in levels[names.index(level):] for tune in tunings
                  for threading, threading_flags in THREADING]
    for name, threading, command in candidates:  # a cached build first: no compiler run
        if library_path(command, version, name).exists():
            return dict(path=library_path(command, version, name), level=name, threading=threading, command=command)
    errors = []
    for name, threading, command in candidates:
        path = library_path(command, version, name)
        error = _build(command, path)
        if error is None:
            return dict(path=path, level=name, threading=threading, command=command)
        errors.append(error)
    raise RuntimeError("could not build the native CPU kernels (kernels/native_weak_reset.c, native_xnor.c, native_cnn.c); use "
                       "backend='reference'. Compiler output:\n" + "\n".join(errors))


@functools.lru_cache(maxsize=None)
def library() -> ctypes.CDLL:
    """The built kernel library (built on first use, then loaded from the cache)."""
    built = build()
    if built["threading"] != "openmp":
        sys.stderr.write(f"rramk: the C compiler has no OpenMP ({os.path.basename(built['command'][0])}): "
                         "the native CPU kernel runs on one thread\n")
    lib = ctypes.CDLL(str(built["path"]))
    lib.rramk_weak_reset_run.argtypes = [ctypes.POINTER(_Launch)]
    lib.rramk_weak_reset_run.restype = ctypes.c_int
    lib.build_info = built  # what was built: level and threading (provenance records them)
    return lib


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """Whether the native kernel builds and loads on this machine."""
    try:
        library()
    except (RuntimeError, OSError):
        return False
    return True


class _Launch(ctypes.Structure):
    """The C ``Launch`` struct (native_weak_reset.c): field for field."""

    _fields_ = [(name, ctypes.c_void_p) for name in ("pulses", "grad", "exp_avg", "exp_avg_sq", "state", "pink",
                                                       "weights", "log_r", "table", "rtn_flip", "taps")] + [
        ("alpha", ctypes.c_float), ("adam", ctypes.c_float * 9)] + [
        (name, ctypes.c_int64) for name in ("table_size", "order", "n_blocks", "numel", "threads", "pink_on",
                                            "rtn_on", "saturation_on", "cycles")] + [
        ("seed", ctypes.c_uint64), ("update", ctypes.c_uint64), ("offset", ctypes.c_int64),
        ("due", ctypes.c_void_p), ("keep", ctypes.c_float), ("due_all", ctypes.c_int64), ("family", ctypes.c_int64),
        ("pair_row", ctypes.c_int64)]


ADAM_SCALARS = ("beta1", "one_minus_beta1", "beta2", "one_minus_beta2", "bias_correction1", "bias_correction2",
                "neg_lr_pulses", "eps", "max_pulses")


def _pointer(tensor: torch.Tensor | None):
    return None if tensor is None else ctypes.c_void_p(tensor.data_ptr())


def _check_cpu(tensor: torch.Tensor, name: str) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    if tensor.device.type != "cpu":
        raise ValueError(f"{name}: the native kernel runs on CPU tensors, got one on {tensor.device} "
                         "(on CUDA use rramk.kernels.weak_reset, the Triton kernel)")


def _check_state(device_state: torch.Tensor, pink: torch.Tensor | None) -> int:
    _check_cpu(device_state, "device_state")
    if pink is not None:
        _check_cpu(pink, "pink")
    return check_state_layout(device_state, pink)


def _check_first(first: int, numel: int) -> None:
    if not (isinstance(first, int) and 0 <= first and first + numel <= 2**32):
        raise ValueError(f"first: expected an integer in [0, 2**32 - {numel}], got {first!r}")


def _check_flat(tensor: torch.Tensor, name: str, dtype: torch.dtype, numel: int) -> None:
    _check_cpu(tensor, name)
    check_flat(tensor, name, dtype, numel, tensor.device)


def _launch(numel: int, seed: int, update: int, cycles: bool, model: dict, offset: int = 0, keep: float = 1.0,
            due_all: bool = False, **tensors) -> None:
    if not (isinstance(seed, int) and 0 <= seed < 2**63):
        raise ValueError(f"seed: expected an int in [0, 2**63), got {seed!r}")
    if not (isinstance(update, int) and 0 <= update < 2**63):
        raise ValueError(f"update: expected an integer in [0, 2**63), got {update!r}")
    (table, rtn_flip, taps, alpha), flags = model_launch_args(**model, device=torch.device("cpu"))
    scalars = tensors.pop("scalars", None)
    launch = _Launch(**{name: _pointer(t) for name, t in tensors.items()}, table=_pointer(table),
                     rtn_flip=_pointer(rtn_flip), taps=_pointer(taps), alpha=alpha,
                     table_size=flags["TABLE_SIZE"], order=flags["ORDER"], n_blocks=flags["N_BLOCKS"], numel=numel,
                     threads=torch.get_num_threads(), pink_on=flags["PINK"], rtn_on=flags["RTN"],
                     saturation_on=flags["SATURATION"], cycles=bool(cycles), seed=seed, update=update,
                     offset=offset, keep=keep, due_all=bool(due_all), family=flags["FAMILY"],
                     pair_row=flags["PAIR_ROW"])
    if scalars is not None:
        launch.adam = (ctypes.c_float * 9)(*(scalars[name] for name in ADAM_SCALARS))
    library().rramk_weak_reset_run(ctypes.byref(launch))


def weak_reset_update(device_state: torch.Tensor, pink: torch.Tensor, pulses: torch.Tensor, weights: torch.Tensor, *,
                      seed: int, update: int, log_r: torch.Tensor | None = None, cycles: bool = False,
                      **model) -> None:
    """Apply signed pulse counts, in place: ``rramk.kernels.weak_reset.weak_reset_update`` on CPU tensors."""
    numel = _check_state(device_state, pink)
    _check_flat(pulses, "pulses", torch.int32, numel)
    _check_flat(weights, "weights", torch.int8, numel)
    if log_r is not None:
        _check_flat(log_r.view(-1), "log_r", torch.float32, 2 * numel)
    _launch(numel, seed, update, cycles, model, pulses=pulses, state=device_state, pink=pink, weights=weights,
            log_r=log_r)


def weak_reset_adam_step(grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                         device_state: torch.Tensor, pink: torch.Tensor, weights: torch.Tensor, *,
                         seed: int, update: int, scalars: dict, cycles: bool = False, **model) -> None:
    """One fused optimizer step, in place: ``rramk.kernels.weak_reset_adam.weak_reset_adam_step`` on CPU tensors."""
    numel = _check_state(device_state, pink)
    for name, t in (("grad", grad), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
        _check_flat(t, name, torch.float32, numel)
    _check_flat(weights, "weights", torch.int8, numel)
    missing = [name for name in ADAM_SCALARS if name not in scalars]
    if missing:
        raise ValueError(f"scalars: expected the step's values {', '.join(ADAM_SCALARS)}; missing {', '.join(missing)}")
    _launch(numel, seed, update, cycles, model, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq,
            state=device_state, pink=pink, weights=weights, scalars=scalars)


def read_log_resistance(device_state: torch.Tensor, pink: torch.Tensor, log_r: torch.Tensor, *, seed: int,
                        updates: int, first: int = 0, cycles: bool = False, **model) -> None:
    """ln R (2, N) of the array as its last update left it, into ``log_r`` (kernel of
    ``rramk.device.weak_reset.read_log_resistance``; ``updates``: the array's updates so far;
    ``first``: the flat index of the first synapse given, to read a slice)."""
    numel = _check_state(device_state, pink)
    _check_flat(log_r.view(-1), "log_r", torch.float32, 2 * numel)
    if not (isinstance(updates, int) and updates >= 0):
        raise ValueError(f"updates: expected an integer >= 0, got {updates!r}")
    _check_first(first, numel)
    _launch(numel, seed, max(updates - 1, 0), cycles, model, offset=first, state=device_state, pink=pink, log_r=log_r)


def refresh_due(device_state: torch.Tensor, due: torch.Tensor, *, seed: int, condition: str, margin: float,
                first: int = 0, **model) -> None:
    """The synapses whose refresh ``condition`` holds, into ``due`` (bool (N,)): the kernel of
    ``rramk.device.refresh.refresh_due`` (``first``: the flat index of the first synapse given)."""
    numel = _check_state(device_state, None)
    _check_flat(due, "due", torch.bool, numel)
    if condition not in ("past_t_star", "window"):
        raise ValueError(f"condition: expected 'past_t_star' or 'window', got {condition!r}")
    if not 0 <= margin < 1:
        raise ValueError(f"margin: expected a fraction in [0, 1) of the fast window, got {margin!r}")
    _check_first(first, numel)
    # keep = 1 - margin, rounded to float32 as torch rounds the scalar of (1 - margin) * t_star
    _launch(numel, seed, 0, False, model, offset=first, keep=1.0 - margin, due_all=condition == "window",
            state=device_state, due=due)
