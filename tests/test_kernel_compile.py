"""Every Triton kernel compiles for real GPUs (sm_80, sm_90) at every launch configuration, on a CPU.

``python -m rramk.kernels.compile_for_gpu`` compiles each case that the kernel modules list
(imperfection flags, filter orders, the ln R output, autotune candidates, sign dtypes) down to a
cubin with Triton's own ``ptxas``; this test runs it in a subprocess without the interpreter and
fails on any compile error. ``reports/gpu/compile.md`` is the same command's report.
"""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")


def test_every_kernel_compiles_for_sm80_and_sm90(tmp_path):
    out = tmp_path / "compile.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, "-m", "rramk.kernels.compile_for_gpu", "--arch", "80", "90",
                           "--json", str(out)], env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    kernels = {r["kernel"] for r in results}
    assert kernels == {"_weak_reset_update_kernel", "_weak_reset_adam_kernel", "_pack_signs_kernel",
                       "_xnor_matmul_kernel", "_sign_matmul_tc_kernel", "_xnor_conv2d_kernel"}
    assert {r["arch"] for r in results} == {80, 90}
    # the device kernels: all 8 imperfection flag combinations, 2 filter orders, the SET cycles (also with
    # the d2d_pair knob) and the soft-bounds and bidirectional families with and without their bounds (x ln R output for the update)
    update = [r for r in results if r["kernel"] == "_weak_reset_update_kernel" and r["arch"] == 90]
    assert len(update) == 2 * (8 + 2 + 2 + 4)
    assert {r["label"] for r in update} >= {"soft_bounds", "soft_bounds,no_bound", "bidirectional",
                                            "bidirectional,no_bound", "all,cycles,pair"}
    for r in results:
        assert "error" not in r, r
        assert r["registers"] > 0
    # bytes per synapse counted from the kernel: n, both state words, both pink terms in; the same
    # plus the int8 weight out (the ln R output adds 2 x 4 B)
    plain = next(r for r in update if r["label"] == "pink,rtn,saturation")
    assert (plain["loaded_bytes_per_element"], plain["stored_bytes_per_element"]) == (20, 17)
    adam = next(r for r in results if r["kernel"] == "_weak_reset_adam_kernel" and r["label"] == "pink,rtn,saturation")
    assert (adam["loaded_bytes_per_element"], adam["stored_bytes_per_element"]) == (28, 25)
    # the hot device kernels keep their registers: no spill at the published model
    assert plain["spill_bytes"] == 0 and adam["spill_bytes"] == 0


def test_compile_command_refuses_the_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run([sys.executable, "-m", "rramk.kernels.compile_for_gpu"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "unset TRITON_INTERPRET" in proc.stderr
