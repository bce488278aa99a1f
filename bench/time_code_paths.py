"""Cost and bits of torch's CPU code paths for one MNIST training step (reports/perf-notes.md #25).

    python bench/time_code_paths.py [steps]

Runs ``steps`` training steps of the published MNIST network (784-3000-10, batch 1000, every
imperfection on, native device kernel) on random pixels in a fresh interpreter per code path:
torch's default (AVX-512 where the CPU has it), torch's AVX2 code (``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2``, what an AVX2-only CPU runs) and the same with MKL's conditional numerical
reproducibility (``MKL_CBWR=AVX2``: MKL's AVX2 code on any CPU that has AVX2). Prints the median
step time and a digest of the final latent state (loss and logits), so that paths that give the same
bits show the same digest. A quick A/B harness; figures for reports come from ``pytest bench``.
"""

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

PATHS = {
    "default": {},
    "aten+onednn avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "aten+onednn avx2, MKL_CBWR=AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                                        "MKL_CBWR": "AVX2"},
}


def one_path(steps: int) -> dict:
    import torch
    import torch.nn.functional as F

    from rramk import HfOxWeakReset
    from rramk.models import mnist_mlp
    from rramk.optim import WeakResetAdam

    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = mnist_mlp()
    optimizer = WeakResetAdam(model.parameters(), HfOxWeakReset(), seed=0)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(1000, 784, generator=g), torch.randint(0, 10, (1000,), generator=g)
    times, digest = [], hashlib.sha256()
    for _ in range(steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
        digest.update(logits.detach().numpy().tobytes())
    return {"ms": statistics.median(times[1:]) * 1e3, "digest": digest.hexdigest()[:16],
            "capability": torch.backends.cpu.get_cpu_capability()}


def main(steps: int = 12) -> None:
    if os.environ.get("RRAMK_CODE_PATH_CHILD"):
        print(json.dumps(one_path(steps)))
        return
    for name, env in PATHS.items():
        out = subprocess.run([sys.executable, __file__, str(steps)], capture_output=True, text=True, check=True,
                             env={**os.environ, **env, "RRAMK_CODE_PATH_CHILD": "1"}).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(f"{name:34s} torch {result['capability']:7s} step {result['ms']:6.1f} ms  digest {result['digest']}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
