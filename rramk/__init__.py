"""rramk: fast simulation of HfOx RRAM synapses under weak-RESET programming.

Public API (DESIGN.md): ``HfOxWeakReset`` (the device model and its ablations),
``DeviceArray`` (an array of 2T2R synapses), and the subpackages ``rramk.kernels``,
``rramk.nn``, ``rramk.optim`` and ``rramk.models``.
"""

from .device_array import DeviceArray
from .device_config import IMPERFECTIONS, HfOxWeakReset

__all__ = ["DeviceArray", "HfOxWeakReset", "IMPERFECTIONS"]
__version__ = "0.1.0"
