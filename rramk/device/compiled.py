"""The compiled CPU path: the reference's chunk functions through ``torch.compile``.

Compiled code is specialised on ``model_tables.compiled_structure(config)`` (every imperfection
on, the config's filter order) and receives the config's tables as data, so one compilation
serves a whole ablation study. The dispatcher (``backends.run``) hands it one chunk of
``backends.REFERENCE_CHUNK`` synapses at a time, as contiguous tensors; compiled code runs over
``COMPILE_CHUNK`` of them at a time, so that its temporaries stay in the caches, each writing
straight into the chunk's outputs.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from .config import HfOxWeakReset

COMPILE_CHUNK = 1 << 16  # synapses per call of compiled code: its temporaries stay in the caches
# Dynamo counts compiled variants per code object, and every compiled chunk function (update, read,
# Adam step; each model structure) is a functools.partial run through one code object of torch's.
# Each function needs a few variants (a whole array in one chunk, strided chunks of a larger array,
# a last chunk of one synapse), so torch's default of 8 is reached by a network with tensors of
# several sizes (CIFAR-10 VGG), and fullgraph=True turns that into a hard failure.
COMPILE_VARIANTS_LIMIT = 256
# The bits equal the reference's only with IEEE float arithmetic as written: no contracted
# multiply-add, no unsafe math. Pinned here, so that TORCHINDUCTOR_CPP_* settings of the
# environment (e.g. ..._FLOATING_POINT_CONTRACT_FLAG=fast) cannot change them.
EXACT_FLOAT_OPTIONS = {"cpp.enable_floating_point_contract_flag": "off", "cpp.enable_unsafe_math_opt_flag": False}


def exact_options() -> dict:
    """EXACT_FLOAT_OPTIONS, and scalar code unless torch runs its AVX-512 code: inductor's AVX2 vector
    code of the model flips some RTN traps the reference does not (tests/test_device_array.py, found
    when the commands pinned torch's AVX2 code path: reports/perf-notes.md); its scalar and AVX-512
    code give the reference's bits. The CPU's default backend is the native C kernel, not this one."""
    if torch.backends.cpu.get_cpu_capability() == "AVX512":
        return dict(EXACT_FLOAT_OPTIONS)
    return {**EXACT_FLOAT_OPTIONS, "cpp.vec_isa_ok": False}


def _into(chunk_fn, outputs, *args, **kwargs):
    """Run ``chunk_fn`` and write its results into ``outputs`` (views of the full-length tensors)."""
    for out, result in zip(outputs, chunk_fn(*args, **kwargs)):
        out.copy_(result)


@functools.lru_cache(maxsize=None)
def compiled_chunk_function(chunk_fn, structure: HfOxWeakReset):
    """``chunk_fn`` compiled for ``structure``, writing into given outputs."""
    return torch.compile(functools.partial(_into, functools.partial(chunk_fn, config=structure)), dynamic=True,
                         fullgraph=True, options=exact_options())


@contextlib.contextmanager
def variants_limit():
    """Within it, compiled chunk functions may have ``COMPILE_VARIANTS_LIMIT`` variants (torch's own
    limit is kept if higher). Entering and leaving costs about a millisecond: once per operation."""
    import torch._dynamo  # its config is complete only once dynamo is imported

    limit = max(torch._dynamo.config.recompile_limit, COMPILE_VARIANTS_LIMIT)
    with torch._dynamo.config.patch(recompile_limit=limit,
                                    accumulated_recompile_limit=max(
                                        torch._dynamo.config.accumulated_recompile_limit, limit)):
        yield


def run_chunks(chunk_fn, structure: HfOxWeakReset, results: list[torch.Tensor], flat: list[torch.Tensor],
               state: list[torch.Tensor], *, seed: int, offset: int = 0, **kwargs) -> None:
    """Fill ``results`` by ``chunk_fn`` compiled, ``COMPILE_CHUNK`` synapses at a time (inside
    :func:`variants_limit`).

    ``flat`` are (N,) inputs, ``state`` (2, N) inputs, of the synapses ``offset`` .. ``offset`` + N - 1
    of an array; ``results`` (full-length outputs) must not overlap them. ``kwargs`` go to
    ``chunk_fn`` (integers become 0-dim int64 tensors there, so that new values do not recompile).
    """
    fn = compiled_chunk_function(chunk_fn, structure)
    numel = state[0].shape[-1]
    seed = torch.tensor(seed, dtype=torch.int64)
    # (flags, such as cycles, stay Python bools: compiled code specialises on them)
    kwargs = {k: torch.tensor(v, dtype=torch.int64) if isinstance(v, int) and not isinstance(v, bool) else v
              for k, v in kwargs.items()}
    for first in range(0, numel, COMPILE_CHUNK):
        part = slice(first, first + COMPILE_CHUNK)
        fn([r[..., part] for r in results], *[x[part] for x in flat], *[x[:, part] for x in state],
           seed=seed, first=torch.tensor(offset + first, dtype=torch.int64), **kwargs)


def run_compiled(chunk_fn, structure: HfOxWeakReset, results: list[torch.Tensor], flat: list[torch.Tensor],
                 state: list[torch.Tensor], *, seed: int, offset: int = 0, **kwargs) -> None:
    """:func:`run_chunks` inside :func:`variants_limit`: fill ``results`` by ``chunk_fn`` compiled."""
    with variants_limit():
        run_chunks(chunk_fn, structure, results, flat, state, seed=seed, offset=offset, **kwargs)
