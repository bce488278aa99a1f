#!/usr/bin/env bash
# One-call check of rramk on a machine with one NVIDIA GPU and no network (torch, triton, pytest
# and pytest-benchmark preinstalled; nothing can be installed from a registry):
#
#     bash bench/gpu_check.sh                       # on the GPU machine
#     GPU_CHECK_DRY_RUN=1 bash bench/gpu_check.sh   # the same steps on a CPU: tiny sizes, Triton interpreted
#
# 1. rramk, rramk.device and rramk.kernels importable: `pip install -e .` without network, else a
#    PYTHONPATH overlay (kernels/ is rramk.kernels only through pyproject's package-dir);
# 2. the GPU and the versions;
# 3. the kernel tests on a fixed set of cases (GPU_CHECK_TEST_SELECT), every autotuned kernel
#    pinned to its first config (the benchmarks autotune and check the winners);
# 4. `pytest bench --benchmark-only` at the gpu sizes (tiny in a dry run), without the ablation
#    (hours); results in $OUT/bench/<size set>.json;
# 5. `python -m rramk.report --reports $OUT`: the tables, $OUT/speed.md, printed last.
#
# The run ends within GPU_CHECK_BUDGET_S (420 s): every step has a timeout, and no benchmark
# starts in the last minute of its share, so the results of a long run are saved. Files (at most
# 8) go to $OUT if set, else reports/gpu/ (a dry run: $TMPDIR/rramk-gpu-check-dry-run/). The last
# lines printed are the tables and a status line; exit status 0 when every step passed.
# Environment: PYTHON (python3); GPU_CHECK_DRY_RUN=1; GPU_CHECK_NO_INSTALL=1 (the overlay, as in
# a dry run); GPU_CHECK_BUDGET_S; GPU_CHECK_TEST_TIMEOUT (120 s); GPU_CHECK_TESTS (test files);
# GPU_CHECK_TEST_SELECT (pytest -k); GPU_CHECK_BENCH_ARGS (more arguments of pytest bench).

set -u -o pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1
PY=${PYTHON:-python3}
DRY=${GPU_CHECK_DRY_RUN:-0}
OUT_DIR=${OUT:-$REPO/reports/gpu}
[ "$DRY" = 1 ] && OUT_DIR=${OUT:-${TMPDIR:-/tmp}/rramk-gpu-check-dry-run}  # never over reports/gpu/
BUDGET=${GPU_CHECK_BUDGET_S:-420}
TEST_TIMEOUT=${GPU_CHECK_TEST_TIMEOUT:-120}
REPORT_S=45  # kept back for the report
SELECT=${GPU_CHECK_TEST_SELECT:-not (torch.float16 or torch.int8)}  # two of the four dtype sweeps
read -r -a BENCH_ARGS <<<"${GPU_CHECK_BENCH_ARGS:-}"
SIZE=gpu
if [ "$DRY" = 1 ]; then
    SIZE=tiny
    export TRITON_INTERPRET=1
    BENCH_ARGS+=(--benchmark-min-rounds=1 --benchmark-max-time=0.01)
fi
TESTS=()
for f in ${GPU_CHECK_TESTS:-tests/test_kernel_weak_reset.py tests/test_kernel_weak_reset_adam.py tests/test_philox.py tests/test_xnor.py}; do
    if [ -f "$f" ]; then TESTS+=("$f"); else echo "gpu_check: no test file $f, left out"; fi
done
mkdir -p "$OUT_DIR/bench" || exit 1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# pytest plugin of step 3: each triton.autotune keeps its first config (one compilation per shape)
cat >"$WORK/pin_autotune.py" <<'EOF'
import triton.runtime.autotuner as autotuner

_init = autotuner.Autotuner.__init__


def _first_config(self, fn, arg_names, configs, *args, **kwargs):
    _init(self, fn, arg_names, list(configs)[:1], *args, **kwargs)


autotuner.Autotuner.__init__ = _first_config
EOF
export PYTHONUNBUFFERED=1 PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}"
SECONDS=0
say() { echo "== [gpu_check ${SECONDS}s] $*"; }
left() { echo $((BUDGET - SECONDS)); }
status() { case $1 in 0) echo "passed" ;; 124 | 137) echo "TIMED OUT (see $2)" ;; *) echo "FAILED, rc $1 (see $2)" ;; esac; }

# ---------------------------------------------------------------- 1. importable rramk
PYTEST_ARGS=(-p no:cacheprovider)
if [ "${GPU_CHECK_NO_INSTALL:-$DRY}" != 1 ] \
    && timeout 60 "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$OUT_DIR/pip_install.log" 2>&1 \
    && "$PY" -c 'import rramk.kernels' >>"$OUT_DIR/pip_install.log" 2>&1; then
    INSTALL="pip install -e ."
else
    [ "${GPU_CHECK_NO_INSTALL:-$DRY}" = 1 ] || { say "pip install -e . failed (pip_install.log):"; tail -n 5 "$OUT_DIR/pip_install.log"; }
    # $WORK/overlay/rramk: a link to each entry of rramk/ (modules and the subpackages device/, data/),
    # plus kernels -> kernels/
    mkdir -p "$WORK/overlay/rramk"
    for f in "$REPO"/rramk/*; do
        [ "$(basename "$f")" = __pycache__ ] || ln -s "$f" "$WORK/overlay/rramk/"
    done
    ln -s "$REPO/kernels" "$WORK/overlay/rramk/kernels"
    export PYTHONPATH="$WORK/overlay:$PYTHONPATH"
    export PYTHONSAFEPATH=1  # `python -m` / `-c` would put the working directory (its plain rramk/) first
    PYTEST_ARGS+=(--import-mode=importlib)  # pytest's default would put the repository root first
    INSTALL="PYTHONPATH overlay $WORK/overlay"
fi
if ! timeout 60 "$PY" -c 'import rramk.device, rramk.kernels.weak_reset as k; print("rramk.kernels:", k.__file__)'; then
    say "FATAL: rramk.kernels does not import ($INSTALL)"
    exit 1
fi
say "rramk importable via: $INSTALL"

# ---------------------------------------------------------------- 2. machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "nvidia-smi failed"
timeout 60 "$PY" - <<'EOF'
import importlib.metadata as md, sys, torch, triton
cuda = torch.cuda.is_available()
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}, "
      f"CUDA available: {cuda}" + (f", {torch.cuda.get_device_name(0)}" if cuda else ""))
for name in ("pytest", "pytest-benchmark", "scipy", "tabulate", "matplotlib"):
    try:
        print(f"{name} {md.version(name)}", end="; ")
    except md.PackageNotFoundError:
        print(f"{name} MISSING", end="; ")
print()
EOF

# ---------------------------------------------------------------- 3. kernel tests
T=$(( $(left) - 180 - REPORT_S ))  # the benchmarks keep at least 180 s
T=$(( T < TEST_TIMEOUT ? T : TEST_TIMEOUT )); T=$(( T > 10 ? T : 10 ))
say "kernel tests (timeout ${T}s, -k '$SELECT'): ${TESTS[*]}"
timeout -k 10 "$T" "$PY" -m pytest -q -p pin_autotune "${PYTEST_ARGS[@]}" -k "$SELECT" "${TESTS[@]}" \
    >"$OUT_DIR/tests.log" 2>&1
TEST_RC=$?
grep -E "^(FAILED|ERROR)" "$OUT_DIR/tests.log" | head -n 20
tail -n 1 "$OUT_DIR/tests.log"

# ---------------------------------------------------------------- 4. benchmarks
T=$(( $(left) - REPORT_S )); T=$(( T > 90 ? T : 90 ))
JSON="$OUT_DIR/bench/$SIZE.json"
rm -f "$JSON"
say "pytest bench --benchmark-only, size set $SIZE (timeout ${T}s, none starts after $((T - 60))s): $JSON"
RRAMK_BENCH_SIZE=$SIZE RRAMK_BENCH_JSON=$JSON RRAMK_BENCH_BUDGET_S=$((T - 60)) \
    timeout -s INT -k 20 "$((T - 20))" "$PY" -m pytest bench --benchmark-only --ignore=bench/test_bench_accuracy.py \
    --continue-on-collection-errors -q -rfEs "${PYTEST_ARGS[@]}" ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"} >"$OUT_DIR/bench.log" 2>&1
BENCH_RC=$?
grep -E "^(FAILED|ERROR)|time budget spent" "$OUT_DIR/bench.log" | head -n 20
tail -n 1 "$OUT_DIR/bench.log"
BUDGET_NOTE=$(grep -q "time budget spent" "$OUT_DIR/bench.log" && echo ", some skipped: time budget")
[ -f "$JSON" ] || { echo "gpu_check: no results saved"; [ "$BENCH_RC" != 0 ] || BENCH_RC=1; }

# ---------------------------------------------------------------- 5. report
say "python -m rramk.report --reports $OUT_DIR"
timeout "$REPORT_S" "$PY" -m rramk.report --reports "$OUT_DIR"
REPORT_RC=$?
[ -f "$OUT_DIR/speed.md" ] && cat "$OUT_DIR/speed.md"
say "install: $INSTALL | tests: $(status $TEST_RC tests.log) | benchmarks: $(status $BENCH_RC bench.log)$BUDGET_NOTE | report: $(status $REPORT_RC speed.md) | files: $OUT_DIR"
[ "$TEST_RC" = 0 ] && [ "$BENCH_RC" = 0 ] && [ "$REPORT_RC" = 0 ]
