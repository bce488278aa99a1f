"""rramk on the machines users have: no Triton (macOS, Windows), a C compiler without OpenMP (Apple's
clang), no C compiler at all, and CPUs of narrower instruction sets than the one a library was built on.

Each case runs in a fresh interpreter (a subprocess), as a user's process would start, and compares its
device bits with the reference computed here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rramk.kernels import native
from tests.test_train import DATA_ROOT, needs_mnist

REPO_ROOT = Path(__file__).resolve().parents[1]

# A meta-path finder that makes ``import triton`` fail as it does where Triton is not installed.
BLOCK_TRITON = """
import importlib.abc, sys
class _NoTriton(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "triton" or name.startswith("triton."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoTriton())
"""

# Pulses through DeviceArray(backend="auto") in the subprocess; its state and the backend chosen, as JSON.
UPDATE_PROBE = """
import json, sys, torch, rramk
from rramk.device import backends
cfg = rramk.HfOxWeakReset()
array = rramk.DeviceArray((64, 40), cfg, seed=3)
g = torch.Generator().manual_seed(4)
for _ in range(3):
    array.apply_pulses(torch.randint(-14, 15, (64, 40), generator=g, dtype=torch.int32))
r_bl, r_blb = array.resistance()
print(json.dumps({"backend": array.backend, "triton_loaded": "triton" in sys.modules,
                  "r": [r_bl.flatten().tolist(), r_blb.flatten().tolist()], "w": array.weights().flatten().tolist()}))
"""


def _expected() -> dict:
    """The probe's resistances and weights by the reference backend, in this process."""
    import rramk

    array = rramk.DeviceArray((64, 40), rramk.HfOxWeakReset(), seed=3, backend="reference")
    g = torch.Generator().manual_seed(4)
    for _ in range(3):
        array.apply_pulses(torch.randint(-14, 15, (64, 40), generator=g, dtype=torch.int32))
    r_bl, r_blb = array.resistance()
    return {"r": [r_bl.flatten().tolist(), r_blb.flatten().tolist()], "w": array.weights().flatten().tolist()}


def _run(code: str, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("CC", "CXX", "TRITON_INTERPRET")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=timeout, env={**base, "OMP_NUM_THREADS": "1", **env})
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def _probe(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_cpu_path_never_imports_triton(tmp_path):
    """With Triton absent, importing rramk and updating devices on the CPU work (the native kernel, whose
    launcher shares no module with the Triton launchers), with the reference's bits."""
    result = _run(BLOCK_TRITON + UPDATE_PROBE, {"RRAMK_CACHE_DIR": str(tmp_path)})
    probe = _probe(result)
    assert probe["backend"] == "native" and not probe["triton_loaded"]
    expected = _expected()
    assert probe["r"] == expected["r"] and probe["w"] == expected["w"], "native bits without Triton"


@needs_mnist
def test_training_and_the_benchmark_harness_run_without_triton(tmp_path):
    """``python -m rramk.train`` trains on simulated devices, and ``pytest bench`` collects every
    benchmark, with Triton absent."""
    train = BLOCK_TRITON + (
        "import runpy; sys.argv = ['rramk.train', 'mnist', '--epochs', '1', '--limit-train', '300', '--hidden', '32', "
        f"'--no-progress', '--data-dir', {str(DATA_ROOT)!r}, '--out', {str(tmp_path / 'run')!r}]\n"
        "runpy.run_module('rramk.train', run_name='__main__')\n"
        "assert 'triton' not in sys.modules\n")
    _run(train, {"RRAMK_CACHE_DIR": str(tmp_path / "cache")})
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["epochs"] == 1 and 0.0 < summary["history"][0]["test_accuracy"] <= 1.0
    collect = BLOCK_TRITON + (
        "import pytest; code = pytest.main(['-q', '--collect-only', '-p', 'no:cacheprovider', 'bench']); "
        "sys.exit(int(code))\n")
    result = _run(collect, {"RRAMK_CACHE_DIR": str(tmp_path / "cache"), "RRAMK_BENCH_SIZE": "cpu"})
    assert "error" not in result.stdout.lower().split("collected")[-1], result.stdout


def _compiler_without_openmp(tmp_path: Path) -> Path:
    """A C compiler that refuses -fopenmp as Apple's clang does (and accepts everything else)."""
    real = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    wrapper = tmp_path / "cc-no-openmp"
    wrapper.write_text("#!/bin/sh\n"
                       'for a in "$@"; do [ "$a" = "-fopenmp" ] && { echo "clang: error: unsupported option '
                       "'-fopenmp'\" >&2; exit 1; }; done\n"
                       f'exec {real} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")), reason="no C compiler")
def test_the_native_kernel_builds_without_openmp(tmp_path):
    """A compiler without OpenMP builds the native kernel single-threaded, says so in one line, and it
    computes the reference's bits."""
    probe_info = UPDATE_PROBE + ("from rramk.kernels import native\n"
                                 "print(json.dumps(native.library().build_info, default=str))\n")
    result = _run(probe_info, {"CC": str(_compiler_without_openmp(tmp_path)), "RRAMK_CACHE_DIR": str(tmp_path)})
    *_, probe_line, built_line = result.stdout.strip().splitlines()
    probe, built = json.loads(probe_line), json.loads(built_line)
    assert probe["backend"] == "native" and built["threading"] == "one thread"
    assert "-fopenmp" not in built["command"]
    notices = [line for line in result.stderr.splitlines() if "no OpenMP" in line]
    assert len(notices) == 1 and "runs on one thread" in notices[0], result.stderr
    expected = _expected()
    assert probe["r"] == expected["r"] and probe["w"] == expected["w"], "native bits without OpenMP"


def test_without_any_compiler_the_reference_runs_with_a_notice(tmp_path):
    """No C compiler (CC names none, none on the PATH, so torch.compile has none either): 'auto' runs the
    reference, after one line that says so and what to install, with the same bits."""
    empty = tmp_path / "bin"
    empty.mkdir()
    result = _run(UPDATE_PROBE, {"CC": str(tmp_path / "no-such-cc"), "PATH": str(empty),
                                 "RRAMK_CACHE_DIR": str(tmp_path)})
    probe = _probe(result)
    assert probe["backend"] == "reference"
    notices = [line for line in result.stderr.splitlines() if line.startswith("rramk:")]
    assert len(notices) == 1 and "no native CPU kernel" in notices[0] and "install gcc" in notices[0], result.stderr
    expected = _expected()
    assert probe["r"] == expected["r"] and probe["w"] == expected["w"]


AVX2_ONLY = {"sse4_1", "sse4_2", "ssse3", "popcnt", "cx16", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe"}
AVX512 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}


def test_instruction_set_levels_follow_the_cpu_flags():
    """The levels a CPU runs come from its feature flags, widest first; other architectures build for
    the compiler's baseline."""
    assert [level for level, _ in native.isa_levels("x86_64", AVX512)] == ["x86-64-v4", "x86-64-v3", "x86-64-v2",
                                                                           "x86-64"]
    assert [level for level, _ in native.isa_levels("x86_64", AVX2_ONLY)] == ["x86-64-v3", "x86-64-v2", "x86-64"]
    assert [level for level, _ in native.isa_levels("x86_64", AVX2_ONLY - {"fma"})] == ["x86-64-v2", "x86-64"]
    assert native.isa_levels("x86_64", set()) == [("x86-64", [])]
    assert native.isa_levels("aarch64", set()) == [("aarch64", [])]


def _vector_registers(path: Path) -> tuple[int, int]:
    """How many instructions of the library use zmm (AVX-512) and ymm (AVX) registers."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True).stdout
    return text.count("zmm"), text.count("ymm")


@pytest.mark.skipif(os.uname().machine != "x86_64" or not shutil.which("objdump") or not shutil.which("cc"),
                    reason="x86-64 with cc and objdump")
def test_a_library_built_for_avx512_is_not_loaded_on_an_avx2_cpu(tmp_path, monkeypatch):
    """A cache shared by an AVX-512 machine and an AVX2 one (a cluster's home directory): the library the
    first built (it uses zmm registers) is not the one the second loads, which is built for AVX2 (no
    zmm), whatever the CPU's model name says. Only compiled here, never run: the test holds on both."""
    monkeypatch.setenv("RRAMK_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("RRAMK_NATIVE_ISA", raising=False)
    monkeypatch.setattr(native, "cpu_features", lambda: AVX512)
    wide = native.build()
    assert wide["level"] == "x86-64-v4" and wide["path"].exists()
    monkeypatch.setattr(native, "cpu_features", lambda: AVX2_ONLY)
    narrow = native.build()
    assert narrow["level"] == "x86-64-v3" and narrow["path"] != wide["path"]
    assert not any("x86-64-v4" in flag or "avx512" in flag for flag in narrow["command"])
    wide_zmm, _ = _vector_registers(wide["path"])
    narrow_zmm, narrow_ymm = _vector_registers(narrow["path"])
    assert wide_zmm > 0, "the AVX-512 build should use zmm registers (else this test cannot fail)"
    assert narrow_zmm == 0 and narrow_ymm > 0, "the AVX2 build must not contain AVX-512 instructions"
    assert native.build()["path"] == narrow["path"]  # found in the cache the second time, not rebuilt


def test_a_level_the_cpu_lacks_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(native, "cpu_features", lambda: AVX2_ONLY)
    monkeypatch.setattr(native.platform, "machine", lambda: "x86_64")
    with pytest.raises(ValueError, match=r"RRAMK_NATIVE_ISA: expected an instruction-set level this CPU runs "
                                         r"\(x86-64-v3, x86-64-v2, x86-64\), got 'x86-64-v4'"):
        native.build("x86-64-v4")


CROSS_COMPILERS = {"aarch64": "aarch64-linux-gnu-gcc"}


@pytest.mark.parametrize("machine", sorted(CROSS_COMPILERS))
def test_the_native_source_builds_for_other_architectures(tmp_path, machine):
    """The C kernel compiles for aarch64 (NEON baseline) with the flags rramk builds it with there: a
    cross compiler from Debian's packages (gcc-aarch64-linux-gnu; .ci/run installs it)."""
    cross = shutil.which(CROSS_COMPILERS[machine])
    if cross is None:
        pytest.skip(f"{CROSS_COMPILERS[machine]} not installed (Debian: apt install gcc-{machine}-linux-gnu)")
    (level, level_flags), = native.isa_levels(machine, set())
    command = [cross, *native.FLAGS, *native.THREADING[0][1], *level_flags, *native._defines()]
    out = tmp_path / f"weak_reset-{level}.so"
    result = subprocess.run([*command, *map(str, native.SOURCES), "-o", str(out), "-lm"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    header = out.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
