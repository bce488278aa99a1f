#!/usr/bin/env bash
# One-call check of rramk on a fresh machine with one NVIDIA GPU and no network
# (torch, triton and Python preinstalled; nothing can be installed from a registry):
#
#     bash bench/gpu_check.sh
#
# 1. makes rramk and rramk.kernels importable: `pip install -e .` without network, else a
#    PYTHONPATH overlay (kernels/ is mapped to rramk.kernels by pyproject's package-dir, so a
#    plain source tree does not import rramk.kernels);
# 2. prints the GPU, Python, torch and triton;
# 3. runs the GPU kernel tests with pytest (skipped, and said so, if pytest is missing);
# 4. runs bench/gpu_timings.py (plain Python, needs neither pytest nor pytest-benchmark), then
#    prints a status line and the timings' summary table last.
#
# Files (at most 6) go to $OUT if set, else reports/gpu/: pip_install.log, pytest.log,
# gpu_timings.log, gpu_timings.json, gpu_timings.md, gpu_timings_summary.md.
#
# Environment: PYTHON (python3); GPU_CHECK_TEST_TIMEOUT (120 s); GPU_CHECK_TIMINGS_TIMEOUT (300 s;
# gpu_timings.py stops starting measurements after GPU_CHECK_BUDGET_S, 255 s); GPU_CHECK_TESTS
# (the three kernel test files); GPU_CHECK_NO_INSTALL=1 (skip pip, use the overlay); the
# GPU_CHECK_* variables of bench/gpu_timings.py. With the defaults it ends within 8 minutes.
# Exit status: 0 when the tests passed and every timing check held, else 1.

set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1
PY=${PYTHON:-python3}
OUT_DIR=${OUT:-$REPO/reports/gpu}
mkdir -p "$OUT_DIR" || exit 1
export OUT="$OUT_DIR" PYTHONUNBUFFERED=1
TEST_TIMEOUT=${GPU_CHECK_TEST_TIMEOUT:-120}
TIMINGS_TIMEOUT=${GPU_CHECK_TIMINGS_TIMEOUT:-300}
read -r -a TESTS <<<"${GPU_CHECK_TESTS:-tests/test_kernel_weak_reset.py tests/test_xnor.py tests/test_philox.py}"
SECONDS=0

say() { echo "== [gpu_check ${SECONDS}s] $*"; }

# ---------------------------------------------------------------- 1. importable rramk
PYTEST_ARGS=()
if [ "${GPU_CHECK_NO_INSTALL:-0}" != 1 ] \
    && "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$OUT_DIR/pip_install.log" 2>&1 \
    && "$PY" -c 'import rramk.kernels' >>"$OUT_DIR/pip_install.log" 2>&1; then
    INSTALL="pip install -e ."
else
    if [ "${GPU_CHECK_NO_INSTALL:-0}" != 1 ]; then
        say "pip install -e . failed or does not import rramk.kernels; last lines of pip_install.log:"
        tail -n 5 "$OUT_DIR/pip_install.log"
    fi
    # $PKG/rramk: a directory of links to each file of rramk/, plus kernels -> kernels/
    PKG="$(mktemp -d)/pkg"
    mkdir -p "$PKG/rramk"
    for f in "$REPO"/rramk/*; do
        [ "$(basename "$f")" = __pycache__ ] || ln -s "$f" "$PKG/rramk/"
    done
    ln -s "$REPO/kernels" "$PKG/rramk/kernels"
    export PYTHONPATH="$PKG${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONSAFEPATH=1  # `python -m` / `-c` would put the working directory (its plain rramk/) first
    PYTEST_ARGS=(--import-mode=importlib)  # pytest's default would put the repository root first
    INSTALL="PYTHONPATH overlay $PKG"
fi
if ! "$PY" -c 'import rramk, rramk.kernels.weak_reset as k; print("rramk:", rramk.__file__, "| rramk.kernels:", k.__file__)'; then
    say "FATAL: rramk.kernels does not import ($INSTALL)"
    exit 1
fi
say "rramk importable via: $INSTALL"

# ---------------------------------------------------------------- 2. machine
say "GPU and software"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi failed"
"$PY" - <<'EOF'
import sys, torch, triton
cuda = torch.cuda.is_available()
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"triton {triton.__version__}; CUDA available: {cuda}"
      + (f"; {torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).multi_processor_count} SMs" if cuda else ""))
for name in ("pytest", "pytest_benchmark", "scipy"):
    try:
        __import__(name)
        print(f"{name}: present")
    except ImportError:
        print(f"{name}: MISSING" + (" (gpu_timings.py does not need it)" if name == "pytest_benchmark" else ""))
EOF

# ---------------------------------------------------------------- 3. kernel tests
if "$PY" -c 'import pytest' 2>/dev/null; then
    say "kernel tests (timeout ${TEST_TIMEOUT}s): ${TESTS[*]}"
    timeout -k 10 "$TEST_TIMEOUT" "$PY" -m pytest -q -x -p no:cacheprovider ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"} \
        "${TESTS[@]}" >"$OUT_DIR/pytest.log" 2>&1
    TEST_RC=$?
    tail -n 12 "$OUT_DIR/pytest.log"
    case $TEST_RC in
        0) TEST_STATUS="passed" ;;
        124 | 137) TEST_STATUS="TIMED OUT after ${TEST_TIMEOUT}s (see pytest.log)" ;;
        *) TEST_STATUS="FAILED, rc $TEST_RC (see pytest.log)" ;;
    esac
else
    TEST_RC=0
    TEST_STATUS="skipped: pytest is not installed"
    say "$TEST_STATUS"
fi

# ---------------------------------------------------------------- 4. timings
say "timings (timeout ${TIMINGS_TIMEOUT}s): bench/gpu_timings.py"
rm -f "$OUT_DIR/gpu_timings_summary.md"  # never show an earlier run's table
GPU_CHECK_PRINT_TABLE=0 timeout -k 15 "$TIMINGS_TIMEOUT" "$PY" bench/gpu_timings.py >"$OUT_DIR/gpu_timings.log" 2>&1
TIMINGS_RC=$?
grep -E "^\[gpu_timings .*(check:|memory:)|Traceback|Error|FAILED" "$OUT_DIR/gpu_timings.log" | tail -n 12
case $TIMINGS_RC in
    0) TIMINGS_STATUS="done" ;;
    3) TIMINGS_STATUS="done, but a correctness check FAILED (see the table)" ;;
    124 | 137) TIMINGS_STATUS="TIMED OUT after ${TIMINGS_TIMEOUT}s: the table holds what was measured" ;;
    *) TIMINGS_STATUS="FAILED, rc $TIMINGS_RC (see gpu_timings.log)" ;;
esac

say "install: $INSTALL | tests: $TEST_STATUS | timings: $TIMINGS_STATUS | files: $OUT_DIR"
if [ -f "$OUT_DIR/gpu_timings_summary.md" ]; then
    cat "$OUT_DIR/gpu_timings_summary.md"
else
    tail -n 30 "$OUT_DIR/gpu_timings.log"
fi
[ "$TEST_RC" = 0 ] && [ "$TIMINGS_RC" = 0 ]
