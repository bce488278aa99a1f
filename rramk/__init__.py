"""rramk: fast simulation of HfOx RRAM synapses under weak-RESET programming.

Public API (DESIGN.md): ``HfOxWeakReset`` (the device model and its ablations),
``DeviceArray`` (an array of 2T2R synapses), and the subpackages ``rramk.device``,
``rramk.kernels``, ``rramk.nn``, ``rramk.optim`` and ``rramk.models``. Names are loaded on
first use: importing rramk imports neither torch nor Triton.
"""

_EXPORTS = {
    "DeviceArray": "rramk.device.array",
    "HfOxWeakReset": "rramk.device.config",
    "IMPERFECTIONS": "rramk.device.config",
    "load_preset": "rramk.device.preset",
    "fit_preset": "rramk.fitting.preset_fit",
}

__all__ = sorted(_EXPORTS)
__version__ = "0.2.0"


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
