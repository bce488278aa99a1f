"""After programming: resistance drift and read noise of an array's devices (an extension of MODEL.md).

Drift as phase-change memories show it (aihwkit's PCM preset after Nandakumar et al. 2020): each
device's resistance grows as a power of the time since it was programmed,
R(t) = R(t0) (t / t0)**nu, so ln R(t) = ln R(t0) + nu ln(t / t0), with the exponent nu drawn once per
device from a normal N(nu_mean, nu_sd) (device-to-device); each read adds white read noise of sd
``read_noise`` in ln R. The published HfOx fit gives neither: both default to 0 and are what-ifs.
Since W = sign(R_BL - R_BLb), a drift common to both devices of a pair changes no weight; only the
spread of nu across devices and the read noise can flip one. Draws come from numpy's PCG64 (seeded by
``seed``): the same on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Retention:
    """How the devices age after programming: drift exponent N(nu_mean, nu_sd), read noise (sd of
    ln R per read) and t0, the time after programming of the first read (seconds)."""

    nu_mean: float = 0.0
    nu_sd: float = 0.0
    read_noise: float = 0.0
    t0: float = 1.0

    def __post_init__(self):
        for name in ("nu_sd", "read_noise"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {getattr(self, name)}")
        if not self.t0 > 0:
            raise ValueError(f"t0: expected seconds > 0, got {self.t0}")

    def exponents(self, devices: int, seed: int) -> np.ndarray:
        """nu of the (2, devices) devices of an array (BL row 0, BLb row 1), drawn once."""
        rng = np.random.default_rng([seed, 0])
        return self.nu_mean + self.nu_sd * rng.standard_normal((2, devices))

    def read(self, log_r: torch.Tensor, nu: np.ndarray, t: float, seed: int, read_index: int) -> np.ndarray:
        """ln R (2, N) float64 of a read ``t`` seconds after programming (t >= t0): the drifted values plus
        this read's noise (read ``read_index`` of the array: each read draws its own)."""
        if t < self.t0:
            raise ValueError(f"after: expected times >= t0 = {self.t0:g} s, got {t:g} s")
        aged = log_r.detach().to(torch.float64).cpu().numpy().reshape(2, -1) + nu * math.log(t / self.t0)
        if self.read_noise:
            aged = aged + self.read_noise * np.random.default_rng([seed, 1, read_index]).standard_normal(aged.shape)
        return aged


def read_weights(aged: np.ndarray) -> np.ndarray:
    """W = +1 where ln R_BL >= ln R_BLb else -1 (a tie reads +1), float32 (N,)."""
    return np.where(aged[0] >= aged[1], 1.0, -1.0).astype(np.float32)
