"""Truncated distributions of the device-to-device (D2D) parameters (MODEL.md section 1.2).

A truncated draw takes a uniform u in [F(low), F(high)] and returns F^-1(u), with F the
untruncated CDF (scipy's parameterisation). rramk samples each parameter through a table
of its S = 2**10 quantiles at the mid-points (``rramk.streams.D2D_TABLE_SIZE``)

    x_i = F^-1( F(low) + (i + 1/2) / S * (F(high) - F(low)) ),   i = 0 .. S - 1,

indexed by 10 random bits. The table is computed once, in float64, from the closed forms
below. A lookup is exact and the same in every backend (no transcendental function runs
per update, so the PyTorch reference and the Triton kernels agree bit for bit), and the
discretisation moves the CDF by at most 1/(2S) = 5e-4, far below what a sample of the
20 000 devices of a test can resolve (Kolmogorov-Smirnov critical distance 0.01); the
outermost 1/(2S) of each tail is represented by its quantile x_0 or x_{S-1}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return torch.special.ndtr(z)


def _normal_icdf(p: torch.Tensor) -> torch.Tensor:
    return torch.special.ndtri(p)


def _as_float64(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


@dataclass(frozen=True)
class _Truncated:
    """Common part: truncation range [low, high] and the published mean after truncation."""

    def validate(self, name: str) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"{name}: truncation range [{self.low}, {self.high}] must be finite")
        if self.low > self.high:
            raise ValueError(f"{name}: truncation range is inverted: low={self.low} > high={self.high}")
        if not self.low <= self.mean_truncated <= self.high:
            raise ValueError(
                f"{name}: mean_truncated={self.mean_truncated} lies outside the truncation range "
                f"[{self.low}, {self.high}]"
            )
        if not (self.cdf(self.high) - self.cdf(self.low)).item() > 0:
            raise ValueError(f"{name}: the truncation range [{self.low}, {self.high}] holds no probability mass")

    def cdf(self, x) -> torch.Tensor:
        raise NotImplementedError

    def icdf(self, p) -> torch.Tensor:
        raise NotImplementedError

    def untruncated_pdf(self, x) -> torch.Tensor:
        raise NotImplementedError

    def pdf(self, x) -> torch.Tensor:
        """Density of the truncated distribution (float64): f(x) / (F(high) - F(low)) on [low, high]."""
        x = _as_float64(x)
        mass = self.cdf(self.high) - self.cdf(self.low)
        inside = (x >= self.low) & (x <= self.high)
        return torch.where(inside, self.untruncated_pdf(x) / mass, 0.0)

    def quantile_table(self, size: int) -> torch.Tensor:
        """The ``size`` mid-point quantiles of the truncated distribution (float64, ascending)."""
        lo, hi = self.cdf(self.low), self.cdf(self.high)
        mid = (torch.arange(size, dtype=torch.float64) + 0.5) / size
        values = self.icdf(lo + mid * (hi - lo))
        return values.clamp(self.low, self.high)

    def truncated_mean(self, size: int = 1 << 16) -> float:
        """Mean after truncation, by the mid-point rule on the quantile function (float64)."""
        return self.quantile_table(size).mean().item()


@dataclass(frozen=True)
class TruncatedExponential(_Truncated):
    """Exponential(loc, scale) truncated to [low, high]: F(x) = 1 - exp(-(x - loc) / scale)."""

    loc: float
    scale: float
    low: float
    high: float
    mean_truncated: float

    def validate(self, name: str) -> None:
        if not self.scale > 0:
            raise ValueError(f"{name}: scale must be > 0, got {self.scale}")
        super().validate(name)

    def cdf(self, x) -> torch.Tensor:
        z = ((_as_float64(x) - self.loc) / self.scale).clamp(min=0.0)
        return -torch.expm1(-z)

    def icdf(self, p) -> torch.Tensor:
        return self.loc - self.scale * torch.log1p(-_as_float64(p))

    def untruncated_pdf(self, x) -> torch.Tensor:
        z = (_as_float64(x) - self.loc) / self.scale
        return torch.where(z >= 0, torch.exp(-z.clamp(min=0)) / self.scale, 0.0)


@dataclass(frozen=True)
class TruncatedLognormal(_Truncated):
    """Lognormal(s, loc, scale) truncated to [low, high]: F(x) = Phi(ln((x - loc) / scale) / s)."""

    s: float
    loc: float
    scale: float
    low: float
    high: float
    mean_truncated: float

    def validate(self, name: str) -> None:
        if not (self.s > 0 and self.scale > 0):
            raise ValueError(f"{name}: s and scale must be > 0, got s={self.s}, scale={self.scale}")
        if self.low < self.loc:
            raise ValueError(f"{name}: low={self.low} lies below loc={self.loc}, outside the support")
        super().validate(name)

    def cdf(self, x) -> torch.Tensor:
        shifted = (_as_float64(x) - self.loc) / self.scale
        return torch.where(shifted > 0, _normal_cdf(torch.log(shifted.clamp(min=1e-300)) / self.s), 0.0)

    def icdf(self, p) -> torch.Tensor:
        return self.loc + self.scale * torch.exp(self.s * _normal_icdf(_as_float64(p)))

    def untruncated_pdf(self, x) -> torch.Tensor:
        shifted = ((_as_float64(x) - self.loc) / self.scale).clamp(min=1e-300)
        z = torch.log(shifted) / self.s
        density = torch.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * self.s * shifted * self.scale)
        return torch.where(_as_float64(x) > self.loc, density, 0.0)


@dataclass(frozen=True)
class TruncatedNormal(_Truncated):
    """Normal(loc, scale) truncated to [low, high]: F(x) = Phi((x - loc) / scale)."""

    loc: float
    scale: float
    low: float
    high: float
    mean_truncated: float

    def validate(self, name: str) -> None:
        if not self.scale > 0:
            raise ValueError(f"{name}: scale must be > 0, got {self.scale}")
        super().validate(name)

    def cdf(self, x) -> torch.Tensor:
        return _normal_cdf((_as_float64(x) - self.loc) / self.scale)

    def icdf(self, p) -> torch.Tensor:
        return self.loc + self.scale * _normal_icdf(_as_float64(p))

    def untruncated_pdf(self, x) -> torch.Tensor:
        z = (_as_float64(x) - self.loc) / self.scale
        return torch.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * self.scale)


@dataclass(frozen=True)
class Uniform(_Truncated):
    """Uniform on [low, high]."""

    low: float
    high: float
    mean_truncated: float

    def cdf(self, x) -> torch.Tensor:
        return ((_as_float64(x) - self.low) / (self.high - self.low)).clamp(0.0, 1.0)

    def icdf(self, p) -> torch.Tensor:
        return self.low + _as_float64(p) * (self.high - self.low)

    def untruncated_pdf(self, x) -> torch.Tensor:
        return torch.full_like(_as_float64(x), 1.0 / (self.high - self.low))


TruncatedDistribution = TruncatedExponential | TruncatedLognormal | TruncatedNormal | Uniform
