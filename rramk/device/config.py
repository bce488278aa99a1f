"""The weak-RESET device model as a frozen dataclass, preset with the published HfOx fit.

One device (MODEL.md section 1) has resistance R = R0 * exp(w) after t RESET pulses, with

    w = w_mean(t) + w_rtn + w_pink
    w_mean(t) = m1 * t + c1                               t <  t_star
              = m2 * t + (t_star * (m1 - m2) + c1)        t >= t_star
    w_pink(t) = alpha * sum_{k=0}^{order-1} b_k u_{t-k},  b_0 = 1, b_k = b_{k-1} (k - d) / k
    w_rtn     = s * v * (v' * A_rtn)                       s in {0, 1}: a two-state Markov trap

Each device draws (m1, t_star, c1, m2, R0, A_rtn) once from the truncated distributions
below (device-to-device variability); a fitted preset (``rramk.device.preset``, ``rramk.fit``)
may use any ``Distribution``, an ``Empirical`` one included. A binary weight is
W = sign(R_BL - R_BLb) over a pair of devices, trained by Adam turned into at most
``max_pulses`` RESET pulses per step (MODEL.md sections 2 and 3).

Numbers are from "Model of the Weak Reset Process in HfOx Resistive Memory for Deep
Learning Frameworks", IEEE Trans. Electron Devices 68(10), 4925-4932, 2021,
DOI 10.1109/TED.2021.3108479 (hybrid CMOS/HfOx 1T1R, 130 nm).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .distributions import (DISTRIBUTIONS, Distribution, TruncatedExponential, TruncatedLognormal, TruncatedNormal,
                            Uniform)

IMPERFECTIONS = ("d2d", "pink", "rtn", "saturation")
D2D_PARAMETERS = ("m1", "t_star", "c1", "m2", "r0", "a_rtn")
SCALES = {"d2d": "d2d_scale", "d2d_r": "d2d_r_scale", "d2d_m1": "d2d_m1_scale", "d2d_t_star": "d2d_t_star_scale",
          "d2d_m2": "d2d_m2_scale", "d2d_pair": "d2d_pair_scale", "pink": "pink_scale", "rtn": "rtn_scale",
          "t_star": "t_star_scale"}
"""The continuous knobs of ``HfOxWeakReset.scaled`` (name -> field): what-if factors on the fit, 1 = the fit."""
SPREADS = {"d2d": D2D_PARAMETERS, "d2d_r": ("r0", "c1"), "d2d_m1": ("m1",), "d2d_t_star": ("t_star",),
           "d2d_m2": ("m2",)}
"""The spread knobs and the D2D parameters each scales: every one (d2d), the resistance at t = 0
(ln R(0) = ln R0 + c1: R0 and c1 together), m1, t*, m2. A parameter's factor is the product of its knobs'."""
PAIR_MISMATCH_MAX = math.sqrt(2.0)
"""The largest d2d_pair factor: the two devices of a pair perfectly anti-correlated (rho = 1 - f^2 = -1)."""
DICT_OMITS_AT_ONE = ("d2d_pair_scale",)
"""Knob fields a device's dict leaves out at 1 (added after runs were committed: their dicts stay as written)."""
NON_NEGATIVE = ("m1", "t_star", "m2", "a_rtn")
"""D2D parameters that cannot be negative (with R0, which must be > 0): their spreads scale in log space."""
# Adam's settings moved to the optimizer (rramk.optim.WeakResetAdam); configs saved by rramk 0.1
# carry them with these values, which the optimizer's defaults keep.
LEGACY_ADAM_FIELDS = {"adam_beta1": 0.9, "adam_beta2": 0.999, "adam_eps": 1e-8}


def _imperfection_names(method: str, names: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in IMPERFECTIONS]
    if unknown:
        raise ValueError(f"{method}: unknown imperfection(s) {', '.join(map(repr, unknown))}; "
                         f"valid names are {', '.join(IMPERFECTIONS)}")
    return names


class DeviceFamily:
    """What every device family shares: switches, knobs, the noise terms' checks, copies and dicts.

    A family is a frozen dataclass deriving from this with its D2D parameters (``D2D_PARAMETERS``,
    each a ``Distribution`` field), its knobs (``SCALES``: knob -> field; ``SPREADS``: spread knob ->
    the parameters it scales; ``LOG_SPACE``: parameters whose spread scales in log space;
    ``TABLE_NAMES``: each parameter DeviceArray.d2d_parameters names -> its slot of the D2D table) and
    ``FAMILY``, the number its kernels branch on (a constexpr in Triton, an int in C): 0 the
    two-slope HfOx weak RESET, 1 soft bounds (``rramk.device.soft_bounds``). Its fields also hold the
    shared noise terms (``pink_*``, ``rtn_*``), ``max_pulses``, the four switches and the knobs' factors.
    """

    FAMILY = -1
    D2D_PARAMETERS: tuple = ()
    SCALES: dict = {}
    SPREADS: dict = {}
    NON_NEGATIVE: tuple = ()
    LOG_SPACE: tuple = ()
    TABLE_NAMES: dict = {}

    def _check_shared_fields(self) -> None:
        """The checks of the fields every family has (its distributions, the noise terms, switches, knobs)."""
        for name in self.D2D_PARAMETERS:
            getattr(self, name).validate(name)
        if self.a_rtn.low < 0:
            raise ValueError(f"a_rtn: an amplitude bound cannot be negative, got low={self.a_rtn.low}")
        if not (math.isfinite(self.pink_alpha) and self.pink_alpha >= 0):
            raise ValueError(f"pink_alpha: expected a finite value >= 0, got {self.pink_alpha}")
        if not (isinstance(self.pink_order, int) and 1 <= self.pink_order <= 64):
            raise ValueError(f"pink_order: expected an integer in [1, 64], got {self.pink_order!r}")
        if not 0 <= self.pink_d < 1:
            raise ValueError(f"pink_d: expected a fractional order in [0, 1), got {self.pink_d}")
        for name in ("rtn_p01", "rtn_p10"):
            p = getattr(self, name)
            if not 0 < p < 1:
                raise ValueError(f"{name}: expected a probability in (0, 1), got {p}")
        if not (isinstance(self.max_pulses, int) and 1 <= self.max_pulses < 2**15):
            raise ValueError(f"max_pulses: expected an integer in [1, 32767], got {self.max_pulses!r}")
        for name in IMPERFECTIONS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected True or False, got {getattr(self, name)!r}")
        for knob, name in self.SCALES.items():
            s = getattr(self, name)
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not (math.isfinite(s) and s >= 0):
                raise ValueError(f"{name}: expected a finite factor >= 0 (scaled({knob}=...)), got {s!r}")

    def without(self, *names: str) -> "DeviceFamily":
        """A copy with the named imperfections switched off (any of d2d, pink, rtn, saturation)."""
        return dataclasses.replace(self, **{n: False for n in _imperfection_names("without", names)})

    def only(self, *names: str) -> "DeviceFamily":
        """A copy with exactly the named imperfections on and every other one off."""
        return self.without(*IMPERFECTIONS).with_(*names)

    def with_(self, *names: str) -> "DeviceFamily":
        """A copy with the named imperfections switched on."""
        return dataclasses.replace(self, **{n: True for n in _imperfection_names("with_", names)})

    def scaled(self, **factors: float) -> "DeviceFamily":
        """A copy with the named knobs multiplied by the given factors (any of ``SCALES``).

        ``cfg.scaled(d2d=0.5, pink=2.0)`` halves the device-to-device spread and doubles the 1/f
        amplitude of ``cfg`` (factors multiply: ``cfg.scaled(d2d=2).scaled(d2d=0.5) == cfg``); see the
        class docstring for what each knob does, and ``rramk.device.model_tables.knob_measures`` for
        each knob in the unit a device engineer measures.
        """
        unknown = [k for k in factors if k not in self.SCALES]
        if unknown:
            raise ValueError(f"scaled: unknown knob(s) {', '.join(map(repr, unknown))}; valid names are "
                             f"{', '.join(self.SCALES)}")
        changes = {}
        for knob, factor in factors.items():
            if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not (math.isfinite(factor)
                                                                                        and factor >= 0):
                raise ValueError(f"scaled: {knob}: expected a finite factor >= 0, got {factor!r}")
            changes[self.SCALES[knob]] = float(getattr(self, self.SCALES[knob]) * factor)
        return dataclasses.replace(self, **changes)

    @property
    def scales(self) -> dict[str, float]:
        """The knobs that differ from the fit: {name: factor} (empty for the fit)."""
        return {knob: getattr(self, name) for knob, name in self.SCALES.items() if getattr(self, name) != 1.0}

    @classmethod
    def from_imperfections(cls, text: str) -> "DeviceFamily | None":
        """The device of an imperfection list as the commands write it (``--imperfections``).

        ``ideal``: no device, the software BNN (None); ``none``: the devices' mean behaviour
        only, ``cls().only()``; ``all``: ``cls()``; otherwise a comma list of the imperfections
        that are on, e.g. ``"d2d,rtn"`` is ``cls().only("d2d", "rtn")``. Case and spaces are
        ignored.
        """
        if not isinstance(text, str):
            raise ValueError(f"imperfections: expected a string, got {type(text).__name__}")
        text = text.strip().lower()
        if text == "ideal":
            return None
        if text == "all":
            return cls()
        if text == "none":
            return cls().only()
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in IMPERFECTIONS]
        if unknown or not names:
            raise ValueError(f"imperfections: unknown {', '.join(map(repr, unknown or [text]))}; expected ideal, "
                             f"none, all, or a comma list of {', '.join(IMPERFECTIONS)}")
        return cls().only(*names)

    @property
    def imperfections(self) -> tuple[str, ...]:
        """The imperfections that are on, in the order of IMPERFECTIONS."""
        return tuple(n for n in IMPERFECTIONS if getattr(self, n))

    def pink_coefficients(self) -> list[float]:
        """b_0 .. b_{order-1} of the fractional-integration filter (float64)."""
        b = [1.0]
        for k in range(1, self.pink_order):
            b.append(b[-1] * (k - self.pink_d) / k)
        return b

    def to_dict(self) -> dict:
        """Every field as plain Python values (for checkpoints and run summaries); each D2D
        distribution carries its class name under ``family``."""
        data = dataclasses.asdict(self)
        for name in DICT_OMITS_AT_ONE:
            if data.get(name) == 1.0:
                del data[name]
        if type(self).__name__ != "HfOxWeakReset":  # HfOx dicts stay as rramk 0.1 wrote them
            data = {"device_family": type(self).__name__, **data}
        for name in self.D2D_PARAMETERS:
            data[name] = {"family": type(getattr(self, name)).__name__, **data[name]}
        return data

    def save(self, path, **provenance) -> None:
        """Write this device as a preset file (JSON with units and provenance, ``rramk.device.preset``)."""
        from .preset import save_preset

        save_preset(self, path, **provenance)

    @classmethod
    def from_dict(cls, data: dict) -> "DeviceFamily":
        """Inverse of ``to_dict``; also reads the dicts of rramk 0.1, which kept Adam's settings here
        (a dict of any family: ``rramk.device.families.device_from_dict``)."""
        data = {k: v for k, v in data.items() if not (k in LEGACY_ADAM_FIELDS and v == LEGACY_ADAM_FIELDS[k])}
        family = data.pop("device_family", "HfOxWeakReset")
        if family != cls.__name__:
            raise ValueError(f"from_dict: a {family} dict is not a {cls.__name__} (rramk.device.device_from_dict "
                             "reads any family)")
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            default = getattr(cls(), f.name)
            if dataclasses.is_dataclass(default):
                value = dict(value)
                family = value.pop("family", type(default).__name__)
                if family not in DISTRIBUTIONS:
                    raise ValueError(f"{f.name}: unknown distribution family {family!r}; expected one of "
                                     f"{', '.join(DISTRIBUTIONS)}")
                value = DISTRIBUTIONS[family](**value)
            values[f.name] = value
        unknown = set(data) - set(kinds)
        if unknown:
            raise ValueError(f"from_dict: unknown field(s) {sorted(unknown)}")
        return cls(**values)


@dataclass(frozen=True)
class HfOxWeakReset(DeviceFamily):
    """HfOx RRAM under weak-RESET pulses: the published fit (MODEL.md), with ablation switches.

    ``HfOxWeakReset()`` is the published device; ``.without("d2d", "pink", ...)`` returns a
    copy with those imperfections switched off (MODEL.md section 4):

    * ``d2d``: every device takes the mean after truncation of each parameter;
    * ``pink``: alpha = 0 (no cycle-to-cycle 1/f noise);
    * ``rtn``: w_rtn = 0;
    * ``saturation``: m2 = m1 (one slope, no slow regime).

    ``.scaled(d2d=s, d2d_m1=s, pink=s, ...)`` returns a copy with continuous what-if knobs
    (factors on the fit; 1 everywhere leaves every bit of the model as the fit has it):

    * ``d2d``: the device-to-device spread of every D2D parameter, around its mean after
      truncation, which stays (0: every device the mean, as ``without("d2d")``). A positive
      parameter (R0, m1, t*, m2, A_rtn) is scaled in log space, x -> mean e^{s (ln x - mu)} / Z
      (mu the mean of ln x, Z = the mean of e^{s (ln x - mu)}: the mean kept), so that its spread of
      ln x scales by exactly s and no device is pushed below 0 or clamped; the signed c1 is scaled
      linearly, mean + s (c1 - mean). ``d2d_r`` (R0 and c1: the spread of ln R at t = 0),
      ``d2d_m1``, ``d2d_t_star``, ``d2d_m2``: the same for one quantity (``SPREADS``);
    * ``d2d_pair``: the mismatch of the two devices of a synapse, each keeping the population's
      spread: BLb's quantile of every parameter is that of rho z_BL + sqrt(1 - rho^2) z_BLb in normal
      scores (a Gaussian copula), rho = 1 - s^2, so the sd of z_BL - z_BLb is s times that of two
      independent devices (1: independent, the fit; 0: identical twins; at most sqrt(2));
    * ``pink``: the 1/f amplitude, alpha -> s * alpha;
    * ``rtn``: every device's RTN amplitude bound, A_rtn -> s * A_rtn (max 0.5 s for the fit);
    * ``t_star``: every device's saturation onset, t* -> s * t* (0: the slow slope from the first pulse).
    """

    FAMILY = 0
    D2D_PARAMETERS = D2D_PARAMETERS
    SCALES = SCALES
    SPREADS = SPREADS
    NON_NEGATIVE = NON_NEGATIVE
    LOG_SPACE = NON_NEGATIVE + ("r0",)
    TABLE_NAMES = {name: name for name in ("m1", "t_star", "c1", "m2", "r0", "ln_r0", "a_rtn")}

    m1: Distribution = field(
        default=TruncatedExponential(
            loc=3.7415768289771944e-05, scale=6.564678011593196e-04, low=3.74e-5, high=7.6e-3, mean_truncated=6.942e-4
        )
    )
    """Slope of ln R in the fast regime, in 1/pulse (per device)."""

    t_star: Distribution = field(
        default=TruncatedLognormal(
            s=0.8033817700570505, loc=0.0, scale=542.5385224079308, low=41.0, high=2000.0, mean_truncated=628.3
        )
    )
    """Pulse count at which the slope changes from m1 to m2, in pulses (per device)."""

    c1: Distribution = field(
        default=TruncatedNormal(
            loc=0.005293141020227579, scale=0.05320804175540371, low=-0.15, high=0.15, mean_truncated=5.09e-3
        )
    )
    """Offset of ln(R / R0) at t = 0, dimensionless (per device)."""

    m2: Distribution = field(
        default=TruncatedExponential(
            loc=1.644496812189661e-34, scale=2.8890516951651312e-05, low=0.0, high=1.3e-4, mean_truncated=2.744e-5
        )
    )
    """Slope of ln R in the slow, nearly saturated regime, in 1/pulse (per device)."""

    r0: Distribution = field(
        default=TruncatedNormal(loc=6988.0, scale=381.7, low=6252.0, high=7897.0, mean_truncated=7003.5)
    )
    """Resistance just after SET, R0, in ohm (per device)."""

    a_rtn: Distribution = field(default=Uniform(low=0.0, high=0.5, mean_truncated=0.25))
    """Bound of the random-telegraph-noise amplitude, in ln R (per device)."""

    pink_alpha: float = 0.025
    """Scale of the 1/f term, in ln R per unit of filtered uniform draw."""

    pink_order: int = 15
    """Taps of the fractional-integration filter of the 1/f term."""

    pink_d: float = 0.5
    """Fractional order d of the filter, b_k = b_{k-1} (k - d) / k (d = 1/2: 1/f noise)."""

    rtn_p01: float = 8e-4
    """Probability per pulse that the RTN trap goes from state 0 to state 1."""

    rtn_p10: float = 2e-3
    """Probability per pulse that the RTN trap goes from state 1 to state 0."""

    max_pulses: int = 14
    """Most RESET pulses a device receives in one optimizer step."""

    d2d: bool = True
    """Device-to-device variability on (each device draws its own parameters)."""

    pink: bool = True
    """Cycle-to-cycle 1/f noise on."""

    rtn: bool = True
    """Random telegraph noise on."""

    saturation: bool = True
    """Two-slope saturation on (off: m2 = m1)."""

    d2d_scale: float = 1.0
    """Factor on the D2D spread of every parameter, dimensionless (class docstring; 1: the fit exactly)."""

    d2d_r_scale: float = 1.0
    """Factor on the D2D spread of R0 and c1 together (of ln R at t = 0), dimensionless."""

    d2d_m1_scale: float = 1.0
    """Factor on the D2D spread of m1 (of ln m1), dimensionless."""

    d2d_t_star_scale: float = 1.0
    """Factor on the D2D spread of t* (of ln t*), dimensionless."""

    d2d_m2_scale: float = 1.0
    """Factor on the D2D spread of m2 (of ln m2), dimensionless."""

    d2d_pair_scale: float = 1.0
    """Factor on the mismatch of a synapse's two devices (class docstring), in [0, sqrt 2]; 1: independent."""

    pink_scale: float = 1.0
    """Factor on the 1/f amplitude, dimensionless: the model uses alpha = pink_scale * pink_alpha."""

    rtn_scale: float = 1.0
    """Factor on every device's RTN amplitude bound A_rtn, dimensionless (0: w_rtn = 0)."""

    t_star_scale: float = 1.0
    """Factor on every device's saturation onset t_star, dimensionless (after the D2D spread)."""

    def __post_init__(self) -> None:
        self._check_shared_fields()
        for name in ("m1", "m2"):
            if getattr(self, name).low < 0:
                raise ValueError(f"{name}: a RESET slope cannot be negative, got low={getattr(self, name).low}")
        if self.t_star.low < 0:
            raise ValueError(f"t_star: must be >= 0 pulses, got low={self.t_star.low}")
        if self.r0.low <= 0:
            raise ValueError(f"r0: a resistance must be > 0 ohm, got low={self.r0.low}")
        if self.d2d_pair_scale > PAIR_MISMATCH_MAX:
            raise ValueError(f"d2d_pair_scale: expected a factor in [0, sqrt(2)] (scaled(d2d_pair=...); sqrt(2): the "
                             f"two devices of a pair anti-correlated), got {self.d2d_pair_scale!r}")


def parse_scales(text: str, names: dict = SCALES) -> dict[str, float]:
    """The knobs of a command line, ``"d2d=0.5,pink=2"`` -> {"d2d": 0.5, "pink": 2.0} ("" -> {}).

    Names are those of ``HfOxWeakReset.scaled`` (``names``: another family's ``SCALES``); a name given twice, an unknown name, or a value
    that is not a finite number >= 0 is refused with a message that starts with ``scale:``.
    """
    if not isinstance(text, str):
        raise ValueError(f"scale: expected a string such as 'd2d=0.5,pink=2', got {type(text).__name__}")
    factors: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = (x.strip() for x in item.partition("="))
        if not sep or not name or not value:
            raise ValueError(f"scale: expected name=factor (e.g. d2d=0.5), got {item!r}")
        if name not in names:
            raise ValueError(f"scale: unknown knob {name!r}; valid names are {', '.join(names)}")
        if name in factors:
            raise ValueError(f"scale: {name} is given twice")
        try:
            factor = float(value)
        except ValueError:
            raise ValueError(f"scale: {name}: expected a number, got {value!r}") from None
        if not (math.isfinite(factor) and factor >= 0):
            raise ValueError(f"scale: {name}: expected a finite factor >= 0, got {value!r}")
        factors[name] = factor
    return factors


def format_scales(factors: dict[str, float], names: dict = SCALES) -> str:
    """Inverse of ``parse_scales``, in the order of SCALES (another family's knobs after them, as given):
    {"pink": 2.0, "d2d": 0.5} -> "d2d=0.5,pink=2"."""
    return ",".join(f"{name}={factors[name]:g}" if float(f"{factors[name]:g}") == factors[name]
                    else f"{name}={factors[name]!r}"
                    for name in [n for n in names if n in factors] + [n for n in factors if n not in names])
