"""Median time of the native CPU kernel alone on the 784x3000 MNIST layer (reports/perf-notes.md #15-#22).

    python bench/time_native_kernel.py [threads]

Times ``rramk.kernels.native.weak_reset_update`` for three pulse sets (n uniform in [-14, 14]: all
but 1/29 of the synapses pulsed; half the synapses unpulsed, |n| <= 3; none pulsed) and the fused step
``weak_reset_adam_step``, in place on one state, medians of 11 calls; then the refresh condition
(``refresh_due``) on that worn state, and ``DeviceArray.refresh`` (condition and SETs) of a layer worn
by 30 such updates, twice (the second finds fewer synapses due). A quick A/B harness for
kernel changes; the figures that compare providers come from ``pytest bench --benchmark-only``.
"""

import statistics
import sys
import time

import torch

from rramk import DeviceArray, HfOxWeakReset
from rramk.device import model_tables, weak_reset_adam
from rramk.kernels import native


def median_ms(fn, calls: int = 11) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(threads: int = 2) -> None:
    torch.set_num_threads(threads)
    numel = 3000 * 784
    g = torch.Generator().manual_seed(0)
    state, pink = torch.zeros(2, numel, dtype=torch.int32), torch.zeros(2, numel)
    weights = torch.empty(numel, dtype=torch.int8)
    model = model_tables.kernel_arguments(HfOxWeakReset(), "cpu")
    half = torch.where(torch.rand(numel, generator=g) < 0.5, 0, torch.randint(-3, 4, (numel,), generator=g))
    pulse_sets = {"every (uniform in [-14, 14])": torch.randint(-14, 15, (numel,), generator=g, dtype=torch.int32),
                  "half unpulsed": half.to(torch.int32), "none pulsed": torch.zeros(numel, dtype=torch.int32)}
    update = [0]
    for name, n in pulse_sets.items():
        def step():
            native.weak_reset_update(state, pink, n, weights, seed=1, update=update[0], **model)
            update[0] += 1
        print(f"update, {name}: {median_ms(step):.1f} ms")
    grad, m, v = torch.randn(numel, generator=g) * 1e-3, torch.zeros(numel), torch.zeros(numel)
    scalars = weak_reset_adam.adam_scalars(3, 20.0, betas=(0.9, 0.999), eps=1e-8, max_pulses=14).as_floats()
    print(f"fused Adam step: {median_ms(lambda: native.weak_reset_adam_step(grad, m, v, state, pink, weights, seed=1, update=3, scalars=scalars, **model)):.1f} ms")
    due = torch.empty(numel, dtype=torch.bool)
    print(f"refresh condition (past_t_star): {median_ms(lambda: native.refresh_due(state, due, seed=1, condition='past_t_star', margin=0.0, **model)):.1f} ms")
    array = DeviceArray((3000, 784), seed=3)
    for _ in range(30):
        array.apply_pulses(torch.randint(-14, 15, (3000, 784), generator=g, dtype=torch.int32))
    for call in ("first", "second"):
        start = time.perf_counter()
        count = array.refresh()
        print(f"DeviceArray.refresh, {call} call: {(time.perf_counter() - start) * 1e3:.1f} ms ({count} synapses SET)")
    print(f"threads: {threads}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
