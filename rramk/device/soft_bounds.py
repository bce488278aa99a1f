"""The soft-bounds device family: each pulse moves a device a fixed fraction of the way to its bound.

The exponential approach to a bound of aihwkit's SoftBounds and of NeuroSim's non-linearity (and of
PCM's gradual SET), as a unidirectional device in rramk's 2T2R pair. Its read quantity y rises with
the pulses t since the last reset (a conductance-like state, in the preset's units):

    y = g0 + ((w_mean(t) + w_pink) + w_rtn)          W = sign(y_BL - y_BLb), a tie reads +1
    w_mean(t) = (g_max - g0) (1 - (1 - rate)^t)       saturation on (the soft bound)
              = ((g_max - g0) rate) t                 saturation off (every step the first one's)

Per device: g_max (the bound) and rate (fraction of the remaining window per pulse) once; g0 (the
state a reset leaves) in every cycle, as HfOx's R0. w_pink and w_rtn are the shared noise terms
(MODEL.md 1.3-1.4; pink_order 1, pink_d 0 is white noise redrawn at each pulse). The state is
HfOx's (the counter t, 16 bytes per synapse), so an accumulated random walk of step sizes (aihwkit's
dw_min_std) cannot be represented: the noise is that of each read around the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .config import DeviceFamily
from .distributions import Distribution, TruncatedLognormal, TruncatedNormal, Uniform

D2D_PARAMETERS = ("rate", "g_max", "g0", "a_rtn")
SCALES = {"d2d": "d2d_scale", "d2d_g0": "d2d_g0_scale", "d2d_g_max": "d2d_g_max_scale",
          "d2d_rate": "d2d_rate_scale", "pink": "pink_scale", "rtn": "rtn_scale"}
SPREADS = {"d2d": D2D_PARAMETERS, "d2d_g0": ("g0",), "d2d_g_max": ("g_max",), "d2d_rate": ("rate",)}
WRITE_NOISE_SD = 56 * 0.002
"""aihwkit ReRamSBPresetDevice's write noise, write_noise_std * dw_min, in units of w: the sd of the white
term here (alpha = sqrt(12) sd: the uniform draw alpha * u has that sd)."""


@dataclass(frozen=True)
class SoftBounds(DeviceFamily):
    """A soft-bounds device; the defaults are aihwkit's ReRamSBPresetDevice (a loose soft-bounds fit
    to the ReRAM of Gong et al., Nat. Commun. 9, 2102 (2018)), in its units of w, as one device of a
    unidirectional pair (aihwkit uses it bidirectionally):

    * g0 = w_min ~ N(-0.75, 0.3) (w_min_dtod 0.3/0.75 of 0.75), g_max = w_max ~ N(1.25, 0.3) (w_max_dtod
      0.3/1.25 of 1.25), both truncated at 2 sd;
    * rate = dw_min / w_max = 0.002 / 1.25 = 0.0016 per pulse (the step at w = 0 is dw_min), lognormal
      with sd 0.3 of ln rate (dw_min_dtod 0.3), truncated at 2 sd;
    * write noise 56 dw_min = 0.112 sd as white noise at each pulse (pink_order 1, pink_d 0);
    * no RTN in the source: ``rtn`` off (a_rtn's range is a what-if for ``.with_("rtn")``).

    Switches and knobs as ``HfOxWeakReset``'s: ``d2d``, ``pink``, ``rtn``, ``saturation`` (off: no bound,
    every pulse the first one's step); ``scaled(d2d=, d2d_g0=, d2d_g_max=, d2d_rate=, pink=, rtn=)``.
    """

    FAMILY = 1
    D2D_PARAMETERS = D2D_PARAMETERS
    SCALES = SCALES
    SPREADS = SPREADS
    NON_NEGATIVE = ("rate", "a_rtn")
    LOG_SPACE = ("rate", "a_rtn")
    TABLE_NAMES = {"rate": "m1", "g_max": "m2", "g0": "r0", "a_rtn": "a_rtn"}

    rate: Distribution = field(default=TruncatedLognormal(
        s=0.3, loc=0.0, scale=0.0016, low=0.0016 * math.exp(-0.6), high=0.0016 * math.exp(0.6),
        mean_truncated=0.0016564797478344382))
    """Fraction of the remaining window (g_max - y) a pulse moves the device, per pulse (per device)."""

    g_max: Distribution = field(default=TruncatedNormal(loc=1.25, scale=0.3, low=0.65, high=1.85,
                                                        mean_truncated=1.25))
    """The bound the device approaches, in the read quantity's units (per device)."""

    g0: Distribution = field(default=TruncatedNormal(loc=-0.75, scale=0.3, low=-1.35, high=-0.15,
                                                     mean_truncated=-0.75))
    """The state a reset leaves, in the read quantity's units (per device, drawn afresh at each reset)."""

    a_rtn: Distribution = field(default=Uniform(low=0.0, high=0.1, mean_truncated=0.05))
    """Bound of the random-telegraph-noise amplitude, in the read quantity's units (per device)."""

    pink_alpha: float = math.sqrt(12.0) * WRITE_NOISE_SD
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
    d2d_g_max_scale: float = 1.0
    d2d_rate_scale: float = 1.0
    pink_scale: float = 1.0
    rtn_scale: float = 1.0

    def __post_init__(self) -> None:
        self._check_shared_fields()
        if self.rate.low <= 0 or self.rate.high >= 1:
            raise ValueError(f"rate: expected a fraction per pulse in (0, 1), got [{self.rate.low}, {self.rate.high}]")
        if not self.g_max.low > self.g0.high:
            raise ValueError(f"g_max: every bound must lie above every reset state, got g_max.low={self.g_max.low} "
                             f"<= g0.high={self.g0.high}")
