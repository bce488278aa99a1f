"""The configurations of the ablation studies, named once (MODEL.md section 4).

A configuration is one kind of run: which imperfections are on, which knobs of
``HfOxWeakReset.scaled`` differ from the fit, and its runs' directory (slug). ABLATIONS holds every
fixed configuration under one canonical label; a study names some in its own words, so studies that
need the same run share it (one directory, run once). ``published``: the base is the *mean model*
(every device the mean parameters, both slopes: ``only saturation``); ``mean + X`` adds one of d2d,
pink, rtn; the *full model* (``all``) and ``full but X`` (``all but X``) remove one; ``ideal`` is the
software BNN; only d2d, pink, rtn are ranked: saturation, a property of the device, shows in what-ifs
``..., no saturation`` (``none``, ``only X``, ``all but saturation``). ``legacy``: the first study's
framing (base ``none``, saturation ranked as a fourth), all its runs ``published``'s. ``lr``: the mean
and full model at several pulse rates (``lr_study``). ``sensitivity``: one knob swept
(``sensitivity_study``, KNOBS). A label names it everywhere (``rramk.ablation --configs``, tables,
figures); ``rramk.characterize`` captions ``all`` and ``all but X`` as ``full model`` and ``no X``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rramk.device.config import IMPERFECTIONS, SCALES, HfOxWeakReset, format_scales

NOISE = ("d2d", "pink", "rtn")
"""The imperfections the published study ranks: its three sources of variation (MODEL.md section 4)."""


@dataclass(frozen=True)
class AblationConfig:
    """One configuration: its label, the imperfections it switches on, its knobs, its run directory."""

    label: str
    """How the registry names it: ``only d2d``, ``all but rtn``, ``mean + d2d``, ``mean + d2d x0.5``."""

    imperfections: tuple[str, ...] | None
    """The imperfections on, in the order of IMPERFECTIONS; None: the ideal software BNN (no device)."""

    caption: str | None = None
    """Its name in the device characterization, if it is one of the configurations characterized."""

    directory: str | None = None
    """The run directory's name, if not the label's slug (``mean + d2d`` -> ``mean-plus-d2d``)."""

    scales: tuple[tuple[str, float], ...] = ()
    """Knobs of ``HfOxWeakReset.scaled`` that differ from the fit, as (name, factor) pairs."""

    @property
    def slug(self) -> str:
        """The run directory's name: ``all-but-d2d``, ``mean-plus-d2d-x0.5``."""
        return self.directory or slug(self.label)

    @property
    def flag(self) -> str:
        """The value of ``python -m rramk.train --imperfections`` that trains this configuration."""
        if self.imperfections is None:
            return "ideal"
        if not self.imperfections:
            return "none"
        if self.imperfections == IMPERFECTIONS:
            return "all"
        return ",".join(self.imperfections)

    @property
    def scale_flag(self) -> str:
        """The value of ``python -m rramk.train --scale`` ("" for the fit)."""
        return format_scales(dict(self.scales))

    def device(self, base: HfOxWeakReset | None = None) -> HfOxWeakReset | None:
        """The device model on ``base`` (a preset; default the published fit), as ``python -m rramk.train
        --preset`` builds it (None for the ideal software BNN)."""
        if self.imperfections is None:
            return None
        return (base or HfOxWeakReset()).only(*self.imperfections).scaled(**dict(self.scales))


def _registry() -> dict[str, AblationConfig]:
    configs = [AblationConfig("ideal", None), AblationConfig("none", ()),
               AblationConfig("all", IMPERFECTIONS, caption="full model")]
    configs += [AblationConfig(f"only {name}", (name,)) for name in IMPERFECTIONS]
    configs += [AblationConfig(f"all but {name}", tuple(n for n in IMPERFECTIONS if n != name), caption=f"no {name}")
                for name in IMPERFECTIONS]
    configs += [AblationConfig(f"mean + {name}", (name, "saturation"), directory=f"mean-plus-{name}") for name in NOISE]
    return {c.label: c for c in configs}


ABLATIONS: dict[str, AblationConfig] = _registry()
"""Every fixed configuration by its canonical label: the legacy study's, then the published study's new ones."""

CHARACTERIZED: tuple[AblationConfig, ...] = tuple(c for c in ABLATIONS.values() if c.caption)
"""The configurations of the device characterization: the full model, then each imperfection off alone."""


@dataclass(frozen=True)
class Study:
    """A list of configurations under the study's own labels, and how its report compares them.

    ``mean``/``full``: the labels of the base device and of the full model; ``added``/``removed``:
    label patterns of one imperfection added to ``mean`` and removed from ``full``; ``ranked``: the
    imperfections ranked; ``no_saturation``: label -> the label of the same configuration with
    saturation off (the published study's what-ifs).
    """

    name: str
    configs: dict[str, AblationConfig]
    ranked: tuple[str, ...] = ()
    mean: str = ""
    full: str = ""
    added: str = ""
    removed: str = ""
    no_saturation: dict[str, str] = field(default_factory=dict)
    lrs: tuple[float, ...] = ()
    """Pulse learning rates every configuration runs at (empty: rramk.train's default)."""
    knob: str | None = None
    """The knob swept (sensitivity studies); ``values`` gives each label's factor."""
    values: dict[str, float] = field(default_factory=dict)
    base: str | None = None
    """``mean`` or ``full``: what the knob is swept on (sensitivity studies)."""

    @property
    def labels(self) -> list[str]:
        return list(self.configs)


def _published() -> Study:
    configs = {"ideal": ABLATIONS["ideal"], "mean model": ABLATIONS["only saturation"]}
    configs |= {f"mean + {x}": ABLATIONS[f"mean + {x}"] for x in NOISE}
    configs["full model"] = ABLATIONS["all"]
    configs |= {f"full but {x}": ABLATIONS[f"all but {x}"] for x in NOISE}
    no_saturation = {"mean model": "mean model, no saturation", "full model": "full model, no saturation",
                     **{f"mean + {x}": f"mean + {x}, no saturation" for x in NOISE}}
    configs["mean model, no saturation"] = ABLATIONS["none"]
    configs |= {f"mean + {x}, no saturation": ABLATIONS[f"only {x}"] for x in NOISE}
    configs["full model, no saturation"] = ABLATIONS["all but saturation"]
    return Study("published", configs, ranked=NOISE, mean="mean model", full="full model", added="mean + {}",
                 removed="full but {}", no_saturation=no_saturation)


def _legacy() -> Study:
    legacy = ("ideal", "none", "all", *(f"only {n}" for n in IMPERFECTIONS), *(f"all but {n}" for n in IMPERFECTIONS))
    return Study("legacy", {label: ABLATIONS[label] for label in legacy}, ranked=IMPERFECTIONS, mean="none",
                 full="all", added="only {}", removed="all but {}")


STUDIES: dict[str, Study] = {"published": _published(), "legacy": _legacy()}
"""The fixed studies by name; ``lr_study`` and ``sensitivity_study`` build the others from their arguments."""

LEARNING_RATES = (8.0, 20.0, 50.0, 100.0)
"""Pulse learning rates of the lr study: the published runs used 8 to 100 (MODEL.md section 3)."""


def lr_study(lrs: tuple[float, ...] = LEARNING_RATES) -> Study:
    """The mean model and the full model, each at every pulse learning rate of ``lrs``."""
    published = STUDIES["published"]
    return Study("lr", {label: published.configs[label] for label in ("mean model", "full model")},
                 mean="mean model", full="full model", lrs=tuple(float(lr) for lr in lrs))


@dataclass(frozen=True)
class Knob:
    """A continuous knob of ``HfOxWeakReset.scaled``, and how a device engineer measures it."""

    name: str
    imperfection: str
    """The imperfection it belongs to (the switch that turns it off)."""
    measure: str
    """Its key in ``rramk.device.model_tables.knob_measures``."""
    unit: str
    """What the measure is, in words, with its unit."""
    base: str
    """``mean`` or ``full``: what the sweep adds it to by default."""
    values: tuple[float, ...]
    """The default sweep: from 0 to beyond the published fit (1), dense where tolerances are read."""
    family: str = "HfOxWeakReset"
    """The device family whose knob it is (``rramk.device.families``)."""

    @property
    def spreads(self) -> dict:
        """The spread knobs of its family (``SPREADS``)."""
        from rramk.device.families import family_class

        return family_class(self.family).SPREADS

    @property
    def zero_is_off(self) -> bool:
        """Whether factor 0 gives the same weights as switching the imperfection off (d2d, pink, rtn)."""
        return self.imperfection in NOISE

    @property
    def isolated(self) -> bool:
        """A spread knob of one quantity (d2d_r, d2d_m1, ...): on the mean model it is swept alone, every
        other spread at 0, so that its runs measure that quantity's spread and nothing else."""
        return self.name in self.spreads and self.name != "d2d"

    def scales(self, factor: float, base: str) -> tuple[tuple[str, float], ...]:
        """The knobs of ``HfOxWeakReset.scaled`` of one sweep point."""
        if self.isolated and base == "mean":
            return (*((k, 0.0) for k in self.spreads if k not in ("d2d", self.name)), (self.name, factor))
        return ((self.name, factor),)


SPREAD_SWEEP = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 1.5, 2.0)
"""Spread factors: dense below the fit, where the tolerances of the answers lie."""
PAIR_SWEEP = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.2, 1.4)
"""d2d_pair factors: from identical twins (0) past independent devices (1) to anti-correlated (at most sqrt 2)."""

KNOBS: dict[str, Knob] = {
    "d2d": Knob("d2d", "d2d", "sigma_ln_r_0", "sigma of ln R at t = 0 across devices",
                "mean", SPREAD_SWEEP),
    "d2d_r": Knob("d2d_r", "d2d", "sigma_ln_r_0", "sigma of ln R at t = 0 across devices (R0 and c1)", "mean",
                  SPREAD_SWEEP),
    "d2d_m1": Knob("d2d_m1", "d2d", "sigma_ln_m1", "sigma of ln m1 across devices", "mean", SPREAD_SWEEP),
    "d2d_t_star": Knob("d2d_t_star", "d2d", "sigma_ln_t_star", "sigma of ln t* across devices", "mean",
                       SPREAD_SWEEP),
    "d2d_m2": Knob("d2d_m2", "d2d", "sigma_ln_m2", "sigma of ln m2 across devices", "mean", SPREAD_SWEEP),
    # the mismatch of a pair: on the full model (the mean model's devices are all alike), at most sqrt(2)
    "d2d_pair": Knob("d2d_pair", "d2d", "sigma_pair_ln_r_0", "sigma of ln R_BL - ln R_BLb at t = 0 across synapses",
                     "full", PAIR_SWEEP),
    "pink": Knob("pink", "pink", "alpha", "1/f amplitude alpha (ln R)", "mean", (0.0, 0.5, 1.0, 2.0, 4.0)),
    "rtn": Knob("rtn", "rtn", "a_rtn_max", "largest RTN amplitude bound A_rtn (ln R)", "mean",
                (0.0, 0.5, 1.0, 2.0, 4.0)),
    "t_star": Knob("t_star", "saturation", "median_t_star", "median saturation onset t* (pulses)", "full",
                   (0.0, 0.5, 1.0, 2.0, 4.0)),
}
"""The knob of each imperfection, by its name in ``HfOxWeakReset.scaled`` (the same names as SCALES)."""
assert set(KNOBS) == set(SCALES), "a knob of HfOxWeakReset.scaled without its sweep"


def _family_knobs(family: str, spreads: dict[str, tuple[str, str]]) -> dict[str, Knob]:
    """A family's knobs: its spreads (knob -> (measure, unit)), with d2d, pink and rtn as HfOx's in its units."""
    noise = {"pink": Knob("pink", "pink", "alpha", "white-noise amplitude alpha (read quantity)", "mean",
                          (0.0, 0.5, 1.0, 2.0, 4.0), family),
             "rtn": Knob("rtn", "rtn", "a_rtn_max", "largest RTN amplitude bound A_rtn (read quantity)", "mean",
                         (0.0, 0.5, 1.0, 2.0, 4.0), family)}
    return {**{name: Knob(name, "d2d", measure, unit, "mean", SPREAD_SWEEP, family)
               for name, (measure, unit) in spreads.items()}, **noise}


FAMILY_KNOBS: dict[str, dict[str, Knob]] = {
    "HfOxWeakReset": KNOBS,
    "SoftBounds": _family_knobs("SoftBounds", {
        "d2d": ("sigma_g0", "sigma of the reset state g0 across devices"),
        "d2d_g0": ("sigma_g0", "sigma of the reset state g0 across devices"),
        "d2d_g_max": ("sigma_g_max", "sigma of the bound g_max across devices"),
        "d2d_rate": ("sigma_ln_rate", "sigma of ln rate across devices")}),
    "Bidirectional": _family_knobs("Bidirectional", {
        "d2d": ("sigma_g0", "sigma of the reset state g0 across devices"),
        "d2d_g0": ("sigma_g0", "sigma of the reset state g0 across devices"),
        "d2d_bounds": ("sigma_g_max", "sigma of the upper bound g_max across devices"),
        "d2d_rate": ("sigma_ln_rate", "sigma of ln rate_up across devices")}),
}
"""Each device family's knobs, by name in its ``scaled`` (the same names as its SCALES)."""


def knobs_of(family: str = "HfOxWeakReset") -> dict[str, Knob]:
    """The knobs of a device family (a key of ``rramk.device.families.FAMILIES``)."""
    if family not in FAMILY_KNOBS:
        raise ValueError(f"family: expected one of {', '.join(FAMILY_KNOBS)}, got {family!r}")
    return FAMILY_KNOBS[family]


def sensitivity_study(knob: str, values: tuple[float, ...] | None = None, base: str | None = None,
                      family: str = "HfOxWeakReset") -> Study:
    """The mean model and ``knob`` swept over ``values`` on ``base`` (default: the knob's own).

    Base ``mean``: the mean model plus the knob's imperfection (``mean + d2d x0.5``; the saturation
    knob t_star on the mean model itself, where it changes no weight: use base ``full``); base
    ``full``: the full model (``full model, d2d x0.5``). Factor 1 is the unscaled configuration and,
    for d2d, pink and rtn, factor 0 the configuration without the imperfection (the same weights bit
    for bit: a zero table spread, alpha = 0, A_rtn = 0), so those runs are shared with the published
    study.
    """
    knobs = knobs_of(family)
    if knob not in knobs:
        raise ValueError(f"knob: expected one of {', '.join(knobs)} (the knobs of {family}), got {knob!r}")
    spec = knobs[knob]
    base = spec.base if base is None else base
    if base not in ("mean", "full"):
        raise ValueError(f"base: expected mean or full, got {base!r}")
    values = spec.values if values is None else tuple(float(v) for v in values)
    if not values or len(set(values)) != len(values) or any(not v >= 0 for v in values):
        raise ValueError(f"values: expected distinct factors >= 0, got {', '.join(f'{v:g}' for v in values) or 'none'}")
    published = STUDIES["published"].configs
    x = spec.imperfection
    if base == "mean":
        stem = f"mean + {x}" if x in NOISE else "mean model"
        off = "mean model"
    else:
        stem, off = "full model", f"full but {x}" if x in NOISE else None
    configs, factors = {"mean model": published["mean model"]}, {}
    alone = spec.isolated and base == "mean"  # the knob's quantity the only spread: no fixed run at 1
    for v in sorted(values):
        if v == 1.0 and not alone:
            label = stem
        elif v == 0.0 and spec.zero_is_off and (alone or not spec.isolated):
            label = off
        else:
            label = None
        if label is not None:
            config = published[label]
        elif stem.startswith("mean + "):  # mean + d2d x0.5, in mean-plus-d2d-x0.5; mean + d2d_m1 x0.5
            label = f"mean + {knob} x{v:g}"
            config = AblationConfig(label, published[stem].imperfections, directory=f"mean-plus-{knob}-x{v:g}",
                                    scales=spec.scales(v, base))
        else:  # full model, d2d x0.5, in full-d2d-x0.5
            label = f"{stem}, {knob} x{v:g}"
            config = AblationConfig(label, published[stem].imperfections, directory=f"{base}-{knob}-x{v:g}",
                                    scales=spec.scales(v, base))
        configs[label] = config
        factors[label] = v
    return Study("sensitivity", configs, mean="mean model", knob=knob, values=factors, base=base)


def study_by_name(name: str, *, knob: str | None = None, values=None, base: str | None = None,
                  lrs=None, family: str = "HfOxWeakReset") -> Study:
    """The study ``python -m rramk.ablation --study NAME`` runs."""
    if name == "lr":
        return lr_study(LEARNING_RATES if lrs is None else tuple(lrs))
    if name == "sensitivity":
        if knob is None:
            raise ValueError(f"--study sensitivity needs --knob (one of {', '.join(KNOBS)})")
        return sensitivity_study(knob, values, base, family)
    if name not in STUDIES:
        raise ValueError(f"study: expected one of {', '.join([*STUDIES, 'lr', 'sensitivity'])}, got {name!r}")
    return STUDIES[name]


def slug(label: str) -> str:
    """A label as a directory name: spaces become hyphens (``all but d2d`` -> ``all-but-d2d``)."""
    return label.replace(" ", "-")


def label_of(directory: str) -> str:
    """The canonical label whose slug is ``directory`` (the name itself for a directory of no fixed configuration)."""
    return next((c.label for c in ABLATIONS.values() if c.slug == directory), directory)
