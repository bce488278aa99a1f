"""The published study's algorithmic structure, kept as the speed baseline of rramk.

The study simulated each device with one float tensor row [rtn | 15-sample pink history | t],
drew fresh uniforms for the whole history at every step, rolled the history once per distinct
pulse count with boolean-mask indexing, stored the D2D parameters drawn with scipy as float
tensors, and updated the BL devices, then the BLb devices, in two passes. This module does
the same, with the same model equations (MODEL.md), and torch's global-style generator instead
of counter-based Philox: it is statistically equivalent to rramk, not bit-identical. It is a
benchmark baseline, not part of the library. On ``device="cuda"`` the D2D draws are made with
scipy on the CPU, as published, and every tensor and the generator then live on the GPU.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from rramk import HfOxWeakReset


def _scipy_truncated(dist, name: str):
    """A frozen scipy distribution of one D2D parameter, truncated by inverse-CDF sampling."""
    if name in ("m1", "m2"):
        base = stats.expon(loc=dist.loc, scale=dist.scale)
    elif name == "t_star":
        base = stats.lognorm(s=dist.s, loc=dist.loc, scale=dist.scale)
    elif name in ("c1", "r0"):
        base = stats.norm(loc=dist.loc, scale=dist.scale)
    else:
        base = stats.uniform(loc=dist.low, scale=dist.high - dist.low)
    return base


def draw_truncated(dist, name: str, size, rng: np.random.Generator) -> np.ndarray:
    """u uniform in [F(low), F(high)], then F^-1(u) (MODEL.md 1.2), with scipy."""
    base = _scipy_truncated(dist, name)
    lo, hi = base.cdf(dist.low), base.cdf(dist.high)
    return base.ppf(rng.uniform(lo, hi, size=size))


class PublishedStructureArray:
    """Synapse pairs simulated the way the published code did (see module docstring)."""

    HISTORY = 15

    def __init__(self, shape, config: HfOxWeakReset | None = None, seed: int = 0, device="cpu"):
        self.config = config or HfOxWeakReset()
        self.device = device = torch.device(device)
        self.shape = tuple(shape)
        self.numel = n = int(np.prod(self.shape))
        rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.params = []
        self.state = []
        for _side in range(2):
            if self.config.d2d:
                p = {name: torch.tensor(draw_truncated(getattr(self.config, name), name, n, rng), dtype=torch.float32,
                                        device=device)
                     for name in ("m1", "t_star", "c1", "m2", "r0", "a_rtn")}
            else:
                p = {name: torch.full((n,), getattr(self.config, name).mean_truncated, device=device)
                     for name in ("m1", "t_star", "c1", "m2", "r0", "a_rtn")}
            if not self.config.saturation:
                p["m2"] = p["m1"]
            self.params.append(p)
            # one float tensor per device: [rtn state | 15-sample pink history (oldest first) | t]
            self.state.append(torch.zeros(n, 1 + self.HISTORY + 1, device=device))
        b = torch.tensor(self.config.pink_coefficients(), dtype=torch.float32, device=device)
        self.taps_oldest_first = b.flip(0)
        self.resistance = [p["r0"] * torch.exp(p["c1"]) for p in self.params]

    def _device_pass(self, side: int, pulses: torch.Tensor) -> None:
        cfg, p, state = self.config, self.params[side], self.state[side]
        history = state[:, 1:1 + self.HISTORY]
        fresh = torch.rand(history.shape, generator=self.generator, device=self.device)
        extended = torch.cat([history, fresh], dim=1)
        for count in torch.unique(pulses).tolist():  # one roll per distinct pulse count
            if count == 0:
                continue
            mask = pulses == count
            rolled = torch.roll(extended[mask], shifts=-count, dims=1)
            history[mask] = rolled[:, :self.HISTORY]
        t = state[:, -1] + pulses
        state[:, -1] = t
        # RTN: flip after n pulses with the closed form of MODEL.md 1.4, amplitude redrawn
        total = cfg.rtn_p01 + cfg.rtn_p10
        lam_n = (1.0 - total) ** pulses.to(torch.float32)
        rtn = state[:, 0]
        p_flip = torch.where(rtn == 1, cfg.rtn_p10, cfg.rtn_p01) / total * (1.0 - lam_n)
        flips = torch.rand(rtn.shape, generator=self.generator, device=self.device) < p_flip
        rtn[flips] = 1.0 - rtn[flips]
        amplitude = (torch.rand(rtn.shape, generator=self.generator, device=self.device)
                     * torch.rand(rtn.shape, generator=self.generator, device=self.device))
        w_rtn = rtn * amplitude * p["a_rtn"] if cfg.rtn else 0.0
        # pink: only pulses j >= 1 have happened; younger history slots hold zeros until then
        alpha = cfg.pink_alpha if cfg.pink else 0.0
        w_pink = alpha * (history * self.taps_oldest_first).sum(dim=1)
        w_mean = torch.where(t < p["t_star"], p["m1"] * t + p["c1"],
                             p["m2"] * t + p["t_star"] * (p["m1"] - p["m2"]) + p["c1"])
        self.resistance[side] = p["r0"] * torch.exp(w_mean + w_pink + w_rtn)

    def apply_pulses(self, n: torch.Tensor) -> torch.Tensor:
        """One step: BL pass, then BLb pass; returns the +1/-1 weights. ``n`` on the array's device."""
        flat = n.reshape(-1).to(torch.int64)
        self._device_pass(0, flat.clamp(min=0))
        self._device_pass(1, (-flat).clamp(min=0))
        return torch.where(self.resistance[0] >= self.resistance[1], 1.0, -1.0).reshape(self.shape)

    @property
    def state_bytes_per_synapse(self) -> int:
        per_device = sum(v.element_size() for v in self.params[0].values()) + self.state[0].shape[1] * 4
        return 2 * per_device
