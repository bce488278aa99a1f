"""rramk: fast simulation of HfOx RRAM synapses under weak-RESET programming.

Public API (DESIGN.md): ``HfOxWeakReset`` (the device model and its ablations),
``DeviceArray`` (an array of 2T2R synapses), and the subpackages ``rramk.kernels``,
``rramk.nn``, ``rramk.optim`` and ``rramk.models``.
"""

import os

# OpenMP threads that spin while waiting make two rramk processes on one machine (an ablation
# beside a training run, torchrun on CPUs) run 2-4x slower than their share; passive waiting
# costs ~10% alone and halves the time when shared. Takes effect if rramk is imported before
# torch (as `python -m rramk.<tool>` does); an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .device_array import DeviceArray  # noqa: E402
from .device_config import IMPERFECTIONS, HfOxWeakReset  # noqa: E402

__all__ = ["DeviceArray", "HfOxWeakReset", "IMPERFECTIONS"]
__version__ = "0.1.0"
