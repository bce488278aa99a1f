"""The native kernel built at every instruction-set level, timed side by side (reports/perf-notes.md, 2026-12-06).

    python bench/time_native_levels.py

Builds the kernel for x86-64-v4 / v3 / v2 / baseline with the CPU's own tuning, v4 and v3 with gcc's
generic tuning, and with ``-march=native`` (the old build), loads them all in this process and calls
them in turn on the 784x3000 MNIST layer (21 updates per pulse set, medians in ms), then checks that
every build left the same state, pink terms and weights. Only on an x86-64 CPU with AVX-512; a quick
A/B harness, the figures that compare providers come from ``pytest bench --benchmark-only``.
"""

import statistics
import time

import torch

from rramk import HfOxWeakReset
from rramk.device import model_tables
from rramk.kernels import native


def main() -> None:
    torch.set_num_threads(2)
    tune = native.native_tuning(native.compiler())
    variants = [("x86-64-v4", ["-march=x86-64-v4", *tune]), ("x86-64-v4 generic tuning", ["-march=x86-64-v4"]),
                ("-march=native (before)", ["-march=native"]),
                ("x86-64-v3", ["-march=x86-64-v3", *tune]), ("x86-64-v3 generic tuning", ["-march=x86-64-v3"]),
                ("x86-64-v2", ["-march=x86-64-v2", *tune]), ("x86-64 baseline", [*tune])]
    libs = []
    for i, (_, flags) in enumerate(variants):  # one cache entry per variant: its flags are its level
        native.X86_LEVELS = ((f"ab{i}", set(), flags),)
        native.native_tuning = lambda cc: []
        native.library.cache_clear()
        libs.append(native.library())
    numel = 3000 * 784
    g = torch.Generator().manual_seed(0)
    pulse_sets = {"every": torch.randint(-14, 15, (numel,), generator=g, dtype=torch.int32),
                  "training": torch.round(torch.randn(numel, generator=g) * 2.4).clamp(-14, 14).to(torch.int32)}
    model = model_tables.kernel_arguments(HfOxWeakReset(), "cpu")
    print(f"tuning {tune}")
    for kind, n in pulse_sets.items():
        states = [(torch.zeros(2, numel, dtype=torch.int32), torch.zeros(2, numel), torch.empty(numel, dtype=torch.int8))
                  for _ in libs]
        times = [[] for _ in libs]
        for update in range(21):
            for i, lib in enumerate(libs):
                native.library = lambda lib=lib: lib
                state, pink, weights = states[i]
                start = time.perf_counter()
                native.weak_reset_update(state, pink, n, weights, seed=1, update=update, **model)
                times[i].append(time.perf_counter() - start)
        assert all(all(torch.equal(a, b) for a, b in zip(states[0], s)) for s in states), "builds differ in bits"
        print(kind, " | ".join(f"{name}: {statistics.median(t) * 1e3:.1f}" for (name, _), t in zip(variants, times)))


if __name__ == "__main__":
    main()
