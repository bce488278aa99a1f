"""Checks shared by the kernel launchers: can a Triton kernel run on this tensor's device?

A ``@triton.jit`` kernel runs on CUDA tensors, or on CPU tensors when Triton's interpreter is on
(``TRITON_INTERPRET=1`` in the environment *before* the kernel is defined, i.e. before
``rramk.kernels`` is imported; ``tests/conftest.py`` sets it on machines without CUDA). Anything
else would crash deep inside Triton, so launchers call :func:`check_device` first and get an
error that names the argument and says what to do.
"""

from __future__ import annotations

import torch
from triton import knobs

__all__ = ["check_device", "interpreter_active", "runs_interpreted"]


def interpreter_active() -> bool:
    """Whether Triton's interpreter is on (``TRITON_INTERPRET``, read from the environment now)."""
    return bool(knobs.runtime.interpret)


def runs_interpreted(kernel) -> bool:
    """Whether ``kernel`` (a ``@triton.jit`` function, possibly wrapped by autotune) runs in the interpreter.

    Fixed when the kernel was defined, whatever the environment says now.
    """
    from triton.runtime.interpreter import InterpretedFunction

    while kernel is not None and not isinstance(kernel, InterpretedFunction) and hasattr(kernel, "fn"):
        kernel = kernel.fn
    return isinstance(kernel, InterpretedFunction)


def check_device(tensor: torch.Tensor, name: str, kernel=None) -> None:
    """Raise unless a Triton kernel can run on ``tensor``: a CUDA tensor, or a CPU one under the interpreter.

    ``name`` is the argument's name, used in the message. With ``kernel`` (the ``@triton.jit``
    function about to be launched) the interpreter check asks the kernel itself, which was fixed
    when it was defined; without it, the environment is read now.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    if tensor.device.type == "cuda":
        return
    if tensor.device.type == "cpu":
        interpreted = runs_interpreted(kernel) if kernel is not None else interpreter_active()
        if interpreted:
            return
        raise RuntimeError(
            f"{name}: a Triton kernel needs a CUDA tensor, got a CPU tensor and Triton's interpreter is off. "
            "Use the PyTorch reference (the rramk function of the same name, or backend='reference'), "
            "move the tensors to a CUDA device, or set TRITON_INTERPRET=1 in the environment before "
            "importing rramk.kernels to run the kernel (slowly) on the CPU.")
    raise ValueError(f"{name}: expected a CUDA tensor (or a CPU tensor under TRITON_INTERPRET=1), "
                     f"got one on {tensor.device}")
