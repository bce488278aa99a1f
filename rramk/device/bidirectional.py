"""The bidirectional family (ECRAM-like): signed pulses move a stored state up or down, asymmetrically.

BL is programmed both ways, BLb is its fixed reference: W = sign(y_BL - y_BLb), no refresh needed. The
state is BL's displacement d from its reset state g0 in the float slot (the others' pink term): 16 bytes
per synapse, exact on resume (stored) and under data parallelism (elementwise). y = g0 + (d + w_rtn):

    n > 0: d' = d + ((s_up - g0) - d) c_up(n),       c(n) = 1 - (1 - rate)^n,  then d' <= g_max - g0
    n < 0: d' = d + ((s_down - g0) - d) c_down(|n|),                             then d' >= g_min - g0
    c2c:   d' += alpha sqrt(6) (u + u' - 1) |step|   (each update's multiplicative step noise, sd alpha)
    saturation off: d' = d + ((s - g0) rate) n, no bound (every step the first one's from g0)

Each step moves a fraction ``rate`` of the way to a soft target s beyond the hard bound, s_up = g_max +
linearity_up (mean g_max - mean g_min) (s_down likewise below g_min): linearity 0 is soft bounds (aihwkit's
SoftBounds), a large one near-constant steps (LinearStep, ConstantStep). u, u' come from the STEP stream
(``streams``); RTN as in the other families, the pulses |n| stepping the BL trap's chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .config import DeviceFamily
from .distributions import Distribution, TruncatedLognormal, TruncatedNormal, Uniform

D2D_PARAMETERS = ("rate_up", "rate_down", "g_min", "g_max", "g0", "a_rtn")
SCALES = {"d2d": "d2d_scale", "d2d_g0": "d2d_g0_scale", "d2d_bounds": "d2d_bounds_scale",
          "d2d_rate": "d2d_rate_scale", "pink": "pink_scale", "rtn": "rtn_scale"}
SPREADS = {"d2d": D2D_PARAMETERS, "d2d_g0": ("g0",), "d2d_bounds": ("g_min", "g_max"),
           "d2d_rate": ("rate_up", "rate_down")}
# aihwkit EcRamPresetDevice (LinearStep): dw_min 0.002, w_max 1.1724, w_min -0.8276, gamma_up 0.1153,
# gamma_down 0.5085 (mean_bound_reference): up step dw_min (1 - gamma_up w / w_max) = rate_up (s_up - w),
# down step dw_min (1 + gamma_down w / |w_min|) = rate_down (w - s_down).
_W_MAX, _W_MIN, _DW_MIN, _GAMMA_UP, _GAMMA_DOWN = 1.1724, -0.8276, 0.002, 0.1153, 0.5085
RATE_UP = _DW_MIN * _GAMMA_UP / _W_MAX
RATE_DOWN = _DW_MIN * _GAMMA_DOWN / -_W_MIN
LINEARITY_UP = (_W_MAX / _GAMMA_UP - _W_MAX) / (_W_MAX - _W_MIN)
LINEARITY_DOWN = (_W_MIN - _W_MIN / _GAMMA_DOWN) / (_W_MAX - _W_MIN)


def _normal_2sd(mean: float, sd: float) -> TruncatedNormal:
    return TruncatedNormal(loc=mean, scale=sd, low=mean - 2 * sd, high=mean + 2 * sd, mean_truncated=mean)


def _lognormal_2sd(median: float, s: float, mean: float) -> TruncatedLognormal:
    return TruncatedLognormal(s=s, loc=0.0, scale=median, low=median * math.exp(-2 * s), high=median * math.exp(2 * s),
                              mean_truncated=mean)


@dataclass(frozen=True)
class Bidirectional(DeviceFamily):
    """A bidirectional device; the defaults are aihwkit's EcRamPresetDevice (a LinearStep fit to the Li-ion
    ECRAM of Tang et al., IEDM 2018), in its units of w (symmetry point 0):

    * rate_up = dw_min gamma_up / w_max = 1.967e-4, rate_down = dw_min gamma_down / |w_min| = 1.229e-3 per
      pulse, lognormal with sd 0.1 of ln rate (dw_min_dtod 0.1; aihwkit draws one factor for both);
    * linearity_up = (w_max / gamma_up - w_max) / (w_max - w_min) = 4.50, linearity_down = 0.40 (the soft
      targets 10.17 and -1.63 where aihwkit's steps vanish), without gamma's 5 % spread;
    * g_max ~ N(1.1724, 0.05 x 1.1724), g_min ~ N(-0.8276, 0.05 x 0.8276) (w_max_dtod, w_min_dtod), g0 ~
      N(0, 0.01) (reset_std), each truncated at 2 sd;
    * step noise alpha = dw_min_std = 0.3 (multiplicative); no RTN in the source (``rtn`` off).

    Switches: ``d2d``, ``pink`` (the step noise), ``rtn``, ``saturation`` (the bounds); knobs
    ``scaled(d2d=, d2d_g0=, d2d_bounds=, d2d_rate=, pink=, rtn=)``.
    """

    FAMILY = 2
    D2D_PARAMETERS = D2D_PARAMETERS
    SCALES = SCALES
    SPREADS = SPREADS
    NON_NEGATIVE = ("rate_up", "rate_down", "a_rtn")
    LOG_SPACE = ("rate_up", "rate_down", "a_rtn")
    TABLE_NAMES = {"rate_up": "m1", "rate_down": "t_star", "g_min": "c1", "g_max": "m2", "g0": "r0", "a_rtn": "a_rtn"}

    rate_up: Distribution = field(default=_lognormal_2sd(RATE_UP, 0.1, 0.00019745264888442073))
    """Fraction of the way to the upper soft target a pulse up moves the device (per device)."""

    rate_down: Distribution = field(default=_lognormal_2sd(RATE_DOWN, 0.1, 0.0012336158536899377))
    """Fraction of the way to the lower soft target a pulse down moves the device (per device)."""

    g_min: Distribution = field(default=_normal_2sd(_W_MIN, 0.05 * -_W_MIN))
    """Lower hard bound of the state, in the read quantity's units (per device)."""

    g_max: Distribution = field(default=_normal_2sd(_W_MAX, 0.05 * _W_MAX))
    """Upper hard bound of the state, in the read quantity's units (per device)."""

    g0: Distribution = field(default=_normal_2sd(0.0, 0.01))
    """The state after a reset (and of the never-pulsed reference device), per device."""

    a_rtn: Distribution = field(default=Uniform(low=0.0, high=0.1, mean_truncated=0.05))
    """Bound of the random-telegraph-noise amplitude, in the read quantity's units (per device)."""

    linearity_up: float = LINEARITY_UP
    """How far beyond g_max the upper soft target lies, in units of the mean range (0: soft bounds)."""

    linearity_down: float = LINEARITY_DOWN
    """How far below g_min the lower soft target lies, in units of the mean range (0: soft bounds)."""

    pink_alpha: float = 0.3
    pink_order: int = 1
    pink_d: float = 0.0
    rtn_p01: float = 8e-4
    rtn_p10: float = 2e-3
    max_pulses: int = 14
    d2d: bool = True
    pink: bool = True
    rtn: bool = False
    saturation: bool = True
    d2d_scale: float = 1.0
    d2d_g0_scale: float = 1.0
    d2d_bounds_scale: float = 1.0
    d2d_rate_scale: float = 1.0
    pink_scale: float = 1.0
    rtn_scale: float = 1.0

    def __post_init__(self) -> None:
        self._check_shared_fields()
        for name in ("rate_up", "rate_down"):
            d = getattr(self, name)
            if d.low <= 0 or d.high >= 1:
                raise ValueError(f"{name}: expected a fraction per pulse in (0, 1), got [{d.low}, {d.high}]")
        if not self.g_max.low > self.g0.high > self.g0.low > self.g_min.high:
            raise ValueError(f"g0: every reset state must lie strictly between every g_min and every g_max, got g_min <= "
                             f"{self.g_min.high}, g0 in [{self.g0.low}, {self.g0.high}], g_max >= {self.g_max.low}")
        for name in ("linearity_up", "linearity_down"):
            v = getattr(self, name)
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name}: expected a finite number >= 0 (0: soft bounds), got {v!r}")
