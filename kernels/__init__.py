"""Triton kernels of rramk, installed as ``rramk.kernels`` (never as a top-level ``kernels``).

Each kernel module has a PyTorch reference with the same signature in ``rramk`` (its oracle):

* ``weak_reset``       <- ``rramk.device.weak_reset``       the device update of a DeviceArray
* ``weak_reset_adam``  <- ``rramk.weak_reset_adam``  the fused optimizer step (Adam -> pulses -> update)
* ``xnor_matmul``      <- ``rramk.xnor_matmul``      sign packing and XNOR-popcount products

Kernels run on CUDA tensors, or on CPU tensors under TRITON_INTERPRET=1 (slowly; for tests).
Importing this package does not import Triton: the modules do, when they are used.
"""


def __getattr__(name):
    # Lazy exports (DESIGN.md: rramk.kernels.weak_reset_update(...), .xnor_matmul(...), .pack_signs(...)).
    import importlib

    exports = {
        "weak_reset_update": "weak_reset",
        "weak_reset_adam_step": "weak_reset_adam",
        "pack_signs": "xnor_matmul",
        "xnor_matmul": "xnor_matmul",
        "xnor_conv2d": "xnor_matmul",
        "sign_matmul_tc": "xnor_matmul",
        "binary_matmul": "xnor_matmul",
    }
    if name in exports:
        return getattr(importlib.import_module(f"{__name__}.{exports[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
