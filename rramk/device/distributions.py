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


@dataclass(frozen=True)
class Empirical:
    """The distribution of fitted per-device values: linear interpolation of their quantiles.

    ``values`` (ascending) are the quantiles at the Hazen levels p_i = (i + 1/2) / n; the
    quantile function interpolates linearly between them and is flat beyond, so the range is
    [values[0], values[-1]], each end holds mass 1/(2n), and the mean is that of the values.
    One value is a point mass (a fixed parameter). ``pdf`` is a Gaussian kernel estimate
    (Silverman's bandwidth, cut to [low, high]), for display and model selection only.
    """

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))

    @property
    def low(self) -> float:
        return self.values[0]

    @property
    def high(self) -> float:
        return self.values[-1]

    @property
    def mean_truncated(self) -> float:
        """Mean of the distribution: the mean of the values (exact for the interpolated quantiles)."""
        return math.fsum(self.values) / len(self.values)

    def validate(self, name: str) -> None:
        if not self.values:
            raise ValueError(f"{name}: an empirical distribution needs at least one value")
        if not all(math.isfinite(v) for v in self.values):
            raise ValueError(f"{name}: empirical values must be finite")
        if any(b < a for a, b in zip(self.values, self.values[1:])):
            raise ValueError(f"{name}: empirical values must be in ascending order")

    def _levels(self) -> torch.Tensor:
        n = len(self.values)
        return (torch.arange(n, dtype=torch.float64) + 0.5) / n

    def icdf(self, p) -> torch.Tensor:
        return _interpolate(_as_float64(p), self._levels(), _as_float64(self.values))

    def cdf(self, x) -> torch.Tensor:
        x = _as_float64(x)
        values = _as_float64(self.values)
        if len(self.values) == 1:
            return (x >= values[0]).to(torch.float64)
        inside = _interpolate(x, values, self._levels())
        return torch.where(x < values[0], 0.0, torch.where(x >= values[-1], 1.0, inside))

    def bandwidth(self) -> float:
        """Silverman's rule, 0.9 min(std, IQR / 1.34) n^(-1/5) (0 for a point mass)."""
        v = _as_float64(self.values)
        if len(self.values) < 2:
            return 0.0
        iqr = (self.icdf(0.75) - self.icdf(0.25)).item() / 1.34
        spread = min(v.std().item(), iqr) or v.std().item()
        return 0.9 * spread * len(self.values) ** -0.2

    def pdf(self, x) -> torch.Tensor:
        """Gaussian kernel density of the values, cut to [low, high] and renormalised (float64)."""
        x = _as_float64(x)
        v = _as_float64(self.values)
        h = self.bandwidth()
        if h == 0:
            return torch.zeros_like(x)
        kernel = lambda z: torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
        mass = (_normal_cdf((self.high - v) / h) - _normal_cdf((self.low - v) / h)).mean()
        density = kernel((x.unsqueeze(-1) - v) / h).mean(-1) / h / mass
        return torch.where((x >= self.low) & (x <= self.high), density, 0.0)

    def quantile_table(self, size: int) -> torch.Tensor:
        """The ``size`` mid-point quantiles (float64, ascending)."""
        return self.icdf((torch.arange(size, dtype=torch.float64) + 0.5) / size)

    def truncated_mean(self, size: int = 1 << 16) -> float:
        return self.quantile_table(size).mean().item()


def _interpolate(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """np.interp in torch (float64): linear between the points (xp ascending), flat beyond them."""
    if xp.numel() == 1:
        return torch.full_like(x, fp[0].item())
    i = torch.searchsorted(xp, x.clamp(xp[0], xp[-1]), right=True).clamp(1, xp.numel() - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    gap = x1 - x0
    frac = torch.where(gap > 0, (x.clamp(xp[0], xp[-1]) - x0) / torch.where(gap > 0, gap, 1.0), 1.0)
    return f0 + frac * (f1 - f0)


Distribution = TruncatedExponential | TruncatedLognormal | TruncatedNormal | Uniform | Empirical
"""Any distribution a D2D parameter of HfOxWeakReset may take."""

DISTRIBUTIONS = {cls.__name__: cls for cls in (TruncatedExponential, TruncatedLognormal, TruncatedNormal, Uniform,
                                               Empirical)}
"""The distribution classes by name (the ``family`` of a preset file)."""
