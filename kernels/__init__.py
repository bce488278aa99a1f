"""Triton kernels of rramk and their C twins for CPUs, installed as ``rramk.kernels`` (never as a
top-level ``kernels``). Each has a PyTorch reference with the same signatures (its oracle):

* ``weak_reset``       <- ``rramk.device.weak_reset``       the device update of a DeviceArray
* ``weak_reset_adam``  <- ``rramk.device.weak_reset_adam``  the fused optimizer step (Adam -> pulses -> update)
* ``xnor``             <- ``rramk.nn.xnor``                 sign packing and XNOR-popcount / int8 products

``xnor_args`` and ``weak_reset_args`` hold the launch checks shared with the references and the C path;
``native``: the C kernels for CPU tensors (same launchers, same bits); ``native_xnor`` and ``native_cnn``: the
CNN's binary convolution, max pooling and sign in C (torch's results, bit for bit). Triton kernels run on CUDA
tensors, or on CPU tensors under TRITON_INTERPRET=1 (slowly; for tests). Importing this package does
not import Triton: the functions below load from their modules on first use, and no function shares
its name with a module, so ``rramk.kernels.xnor_matmul`` is the function whatever was imported before.
"""

_EXPORTS = {
    "weak_reset_update": "weak_reset",
    "weak_reset_adam_step": "weak_reset_adam",
    "pack_signs": "xnor",
    "sign_matmul_tc": "xnor",
    "xnor_conv2d": "xnor",
    "xnor_matmul": "xnor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
