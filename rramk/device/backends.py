"""The one backend dispatcher of the device model: every operation on a DeviceArray's state.

An operation is a reference function on a slice of synapses (``first``: the slice's first flat
index) reading (N,) inputs and the (2, N) state: UPDATE (pulses; ``weak_reset_update``), ADAM (grad,
m, v; ``weak_reset_adam_step``), DUE (``refresh.refresh_due``), SET (index, held; ``weak_reset_set`` on
the gathered few a refresh SETs), READ (ln R; ``read_log_resistance``) and READ_WEIGHTS /
READ_RESISTANCE (READ, then a ``finish`` per chunk). UPDATE and ADAM write state (and moments) in
place; only the weights are new. Four backends compute every operation with the same bits:
``"reference"`` (eager, over chunks of ``REFERENCE_CHUNK`` so temporaries stay bounded), ``"compiled"``
(the same chunks through ``torch.compile``, CPU), ``"native"`` (the fused C kernels of
``rramk.kernels.native``: UPDATE, ADAM, reads, DUE; SET by the reference) and ``"triton"`` (the fused
GPU kernels for UPDATE and ADAM, else the reference). ``"auto"``: Triton for float32 CUDA arrays; on
a CPU native for float32 where a C compiler builds it, else compiled from ``COMPILE_THRESHOLD``
synapses where torch.compile finds its compiler, else the reference (with a one-line notice).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Callable

import torch

from . import compiled, refresh, model_tables, weak_reset, weak_reset_adam

BACKENDS = ("auto", "reference", "compiled", "native", "triton")
COMPILE_THRESHOLD = 1 << 12
REFERENCE_CHUNK = 1 << 20


def resolve_backend(backend: str, device: torch.device, dtype: torch.dtype, numel: int) -> str:
    """The backend ``backend`` means for an array of ``numel`` synapses in ``dtype`` on ``device``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        if dtype != torch.float32:
            return "reference"
        if device.type == "cuda":
            return "triton"
        if device.type == "cpu" and _native_available():
            return "native"
        fallback = "compiled" if numel >= COMPILE_THRESHOLD and _compiled_available() else "reference"
        _notice_fallback(fallback)
        return fallback
    if backend != "reference" and dtype != torch.float32:
        raise ValueError(f"dtype: the {backend!r} backend computes in float32; use backend='reference' for {dtype}")
    if backend == "compiled" and device.type != "cpu":
        raise ValueError(f"backend: 'compiled' is the CPU path; for an array on {device} use 'triton' "
                         "(the fused kernel, same bits) or 'reference'")
    if backend == "native":
        if device.type != "cpu":
            raise ValueError(f"backend: 'native' is the CPU path; for an array on {device} use 'triton' "
                             "(the fused Triton kernel, same bits) or 'reference'")
        from ..kernels import native

        native.library()  # a clear error now if it cannot be built
    if backend == "triton":
        from ..kernels import weak_reset as kernel

        kernel.check_available(device)
    return backend


def _native_available() -> bool:
    from ..kernels import native

    return native.available()


@functools.lru_cache(maxsize=None)
def _compiled_available() -> bool:
    """Whether torch.compile's CPU code can be built here (it needs a C++ compiler)."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception:  # any failure to find one means: not available
        return False
    return True


@functools.lru_cache(maxsize=None)
def _notice_fallback(backend: str) -> None:
    """One line, once per process and backend: the native kernel could not be built, what runs instead."""
    import sys

    slower = "torch.compile's code" if backend == "compiled" else "the PyTorch reference (slower)"
    sys.stderr.write(f"rramk: no native CPU kernel (no working C compiler; install gcc or set CC): the device "
                     f"model runs on {slower}, with the same bits\n")


# ------------------------------------------------------------------ the operations' chunk functions

def _update_chunk(pulses, device_state, pink, *, config, seed, update, first, constants, cycles=False):
    state, pink, weights, _ = weak_reset.weak_reset_update(device_state, pink, pulses, config=config, seed=seed,
                                                           update=update, first=first, constants=constants,
                                                           cycles=cycles)
    return state, pink, weights


def _read_chunk(device_state, pink, *, config, seed, updates, first, constants, cycles=False):
    return (weak_reset.read_log_resistance(device_state, pink, config=config, seed=seed, updates=updates,
                                           first=first, constants=constants, cycles=cycles),)


def _adam_chunk(grad, exp_avg, exp_avg_sq, device_state, pink, *, config, seed, update, scalars, first, constants,
                cycles=False):
    m, v, state, pink, weights, _ = weak_reset_adam.weak_reset_adam_step(
        grad, exp_avg, exp_avg_sq, device_state, pink, config=config, seed=seed, update=update, scalars=scalars,
        first=first, constants=constants, cycles=cycles)
    return m, v, state, pink, weights


def _due_chunk(device_state, pink, *, config, seed, first, constants, condition, margin, cycles=False):
    return (refresh.refresh_due(device_state, config=config, seed=seed, condition=condition, margin=margin,
                                first=first, constants=constants),)


def _set_chunk(index, held, device_state, pink, *, config, seed, first, constants, updates, max_write_pulses,
               cycles=False, read_noise=0.0, verify_margin=0.0):
    state, pink, weights, _, n = weak_reset.weak_reset_set(device_state, pink, index, held, config=config, seed=seed,
                                                           updates=updates, max_write_pulses=max_write_pulses,
                                                           constants=constants, read_noise=read_noise,
                                                           verify_margin=verify_margin)
    return state, pink, weights, n


def _weights_from_log_r(log_r):
    return (weak_reset.read_weights(log_r),)


def _resistance_from_log_r(log_r):
    return (torch.exp(log_r.to(torch.float64)),)


def _native_read_chunk(device_state, pink, *, config, seed, first, updates, cycles=False):
    """ln R (2, chunk) of one chunk of a READ through the native kernel (on contiguous copies of the chunk)."""
    from ..kernels import native

    log_r = torch.empty(pink.shape, dtype=pink.dtype, device=pink.device)
    native.read_log_resistance(device_state.contiguous(), pink.contiguous(), log_r, seed=seed, updates=updates,
                               first=first, cycles=cycles, **model_tables.kernel_arguments(config, pink.device))
    return (log_r,)


def _native_due_chunk(device_state, pink, *, config, seed, first, condition, margin, cycles=False):
    """The refresh condition (chunk,) of one chunk of a DUE through the native kernel."""
    from ..kernels import native

    due = torch.empty(device_state.shape[1], dtype=torch.bool, device=device_state.device)
    native.refresh_due(device_state.contiguous(), due, seed=seed, condition=condition, margin=margin, first=first,
                       **model_tables.kernel_arguments(config, device_state.device))  # pink is not read: not copied
    return (due,)


@dataclass(frozen=True)
class Operation:
    chunk: Callable  # the reference on a slice of synapses
    outputs: tuple  # (leading shape, dtype or "float" for the array's float type) of each chunk output
    fused: bool  # a fused launcher exists (native C and Triton: ``_fused_kernel``)
    # per chunk output, the input (position in flat + [state, pink]) it overwrites in place, or None
    in_place: tuple = ()
    finish: Callable | None = None  # a chunk's outputs -> the operation's outputs (eager, every backend)
    native: Callable | None = None  # "native" computes a chunk with this kernel function (then ``finish``)
    results: tuple | None = None  # (leading shape, dtype) of the finished outputs (default: outputs)


UPDATE = Operation(_update_chunk, (((2,), torch.int32), ((2,), "float"), ((), torch.int8)), True,
                   in_place=(1, 2, None))
READ = Operation(_read_chunk, (((2,), "float"),), False, native=_native_read_chunk)
READ_WEIGHTS = Operation(_read_chunk, READ.outputs, False, finish=_weights_from_log_r, results=(((), torch.int8),),
                         native=_native_read_chunk)
READ_RESISTANCE = Operation(_read_chunk, READ.outputs, False, finish=_resistance_from_log_r,
                            results=(((2,), torch.float64),), native=_native_read_chunk)
DUE = Operation(_due_chunk, (((), torch.bool),), False, native=_native_due_chunk)
SET = Operation(_set_chunk, (((2,), torch.int32), ((2,), "float"), ((), torch.int8), ((), torch.int32)), False)
ADAM = Operation(_adam_chunk, (((), torch.float32), ((), torch.float32), ((2,), torch.int32), ((2,), "float"),
                               ((), torch.int8)), True, in_place=(1, 2, 3, 4, None))


def _fused_kernel(op: Operation, native: bool):
    """The module whose launcher runs ``op`` fused: the C kernels, or the operation's Triton kernel (Triton is
    imported only when a Triton kernel runs)."""
    if native:
        from rramk.kernels import native as kernel
    elif op is UPDATE:
        from rramk.kernels import weak_reset as kernel
    else:
        from rramk.kernels import weak_reset_adam as kernel
    return kernel


def _launch_kernel(op: Operation, flat, state, pink, *, config, seed, update, scalars=None, cycles=False,
                   native=False):
    """The fused kernel (``native``: the C one), in place on the state (and on the moments, for ADAM); new weights."""
    kernel = _fused_kernel(op, native)
    weights = torch.empty(state.shape[1], dtype=torch.int8, device=state.device)
    model = model_tables.kernel_arguments(config, state.device)
    if op is UPDATE:
        kernel.weak_reset_update(state, pink, *flat, weights, seed=seed, update=update, cycles=cycles, **model)
        return state, pink, weights
    grad, m, v = flat
    kernel.weak_reset_adam_step(grad.contiguous(), m, v, state, pink, weights, seed=seed, update=update,
                                scalars=scalars.as_floats(), cycles=cycles, **model)
    return m, v, state, pink, weights


def _compiled_chunk(op: Operation, inputs, numel_flat: int, *, config, seed, first, constants, **kwargs):
    """The outputs of ``op`` on one chunk through compiled code, on contiguous copies of the chunk."""
    inputs = [x.contiguous() for x in inputs]
    count, dtype = inputs[-1].shape[-1], inputs[-1].dtype
    outputs = [torch.empty(lead + (count,), dtype=dtype if kind == "float" else kind, device=inputs[-1].device)
               for lead, kind in op.outputs]
    compiled.run_chunks(op.chunk, model_tables.compiled_structure(config), outputs, inputs[:numel_flat],
                        inputs[numel_flat:], seed=seed, offset=first, constants=constants, **kwargs)
    return outputs


def run(op: Operation, backend: str, flat: list[torch.Tensor], state: torch.Tensor, pink: torch.Tensor, *,
        config, seed: int, **kwargs) -> tuple[torch.Tensor, ...]:
    """Outputs of ``op`` on the whole array (state (2, N), pink (2, N), ``flat`` (N,) inputs).

    ``backend`` is resolved (not "auto"); ``kwargs`` are the operation's own (update or
    updates, and scalars for ADAM). An output that ``op.in_place`` maps to an input is written
    into that input and returned as it (UPDATE: the state; ADAM: the moments and the state);
    the other outputs are new tensors; no other input is modified. A failure part-way through
    an in-place operation leaves the chunks before it updated.
    """
    if backend in ("triton", "native") and op.fused:
        return _launch_kernel(op, flat, state, pink, config=config, seed=seed, native=backend == "native", **kwargs)
    inputs = [*flat, state, pink]
    numel, dtype = state.shape[1], pink.dtype
    in_place = op.in_place or (None,) * len(op.outputs)
    results = [inputs[i] if i is not None else
               torch.empty(lead + (numel,), dtype=dtype if kind == "float" else kind, device=state.device)
               for i, (lead, kind) in zip(in_place, op.results or op.outputs)]
    constants = model_tables.model_constants(config, state.device, dtype)
    with compiled.variants_limit() if backend == "compiled" else contextlib.nullcontext():
        for first in range(0, numel, REFERENCE_CHUNK):
            part = slice(first, first + REFERENCE_CHUNK)
            chunk = [x[..., part] for x in inputs]
            if backend == "compiled":
                outputs = _compiled_chunk(op, chunk, len(flat), config=config, seed=seed, first=first,
                                          constants=constants, **kwargs)
            elif backend == "native" and op.native is not None:
                outputs = op.native(*chunk, config=config, seed=seed, first=first, **kwargs)
            else:
                outputs = op.chunk(*chunk, config=config, seed=seed, first=first, constants=constants, **kwargs)
            if op.finish is not None:
                outputs = op.finish(*outputs)
            for out, result in zip(results, outputs):
                out[..., part] = result
            del chunk, outputs
    return tuple(results)


def map_chunks(fn: Callable, outputs: list[torch.Tensor], *inputs: torch.Tensor) -> list[torch.Tensor]:
    """Fill ``outputs`` with ``fn`` of ``inputs``, chunk by chunk along the last dimension.

    For the element-wise work of a DeviceArray (unpacking, packing, conversions): its temporaries
    stay within one chunk of ``REFERENCE_CHUNK`` synapses. ``fn`` takes the inputs' chunks and
    returns one tensor per output (broadcast into the output's chunk).
    """
    numel = outputs[0].shape[-1]
    for first in range(0, numel, REFERENCE_CHUNK):
        part = slice(first, first + REFERENCE_CHUNK)
        values = fn(*[x[..., part] for x in inputs])
        for out, value in zip(outputs, values):
            out[..., part] = value
        del values
    return outputs
