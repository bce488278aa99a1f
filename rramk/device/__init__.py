"""The weak-RESET device model: config and presets, D2D distributions, the PyTorch reference,
Philox streams, DeviceArray and its one backend dispatcher, the compiled CPU path.

Imports nothing from rramk's learning or command modules; ``rramk.kernels`` imports only
``rramk.device.streams`` from here. Exports are loaded on first use, so that importing
``rramk.device.streams`` (as the kernels do) loads nothing else.
"""

_EXPORTS = {
    "DeviceArray": "array",
    "HfOxWeakReset": "config",
    "IMPERFECTIONS": "config",
    "D2D_PARAMETERS": "config",
    "load_preset": "preset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
