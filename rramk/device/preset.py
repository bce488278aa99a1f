"""Preset files: a device of any family (``HfOxWeakReset``, ``SoftBounds``) as JSON with units and provenance.

    {"format": "rramk.preset/1", "name": ..., "description": ...,
     "device_family": "SoftBounds",  (absent: HfOxWeakReset)
     "parameters": {"m1": {"unit": "1/pulse", "family": "TruncatedExponential", "loc": ..., ...},
                    "pink_alpha": {"unit": "ln R", "value": 0.025}, ...},
     "imperfections": {"d2d": true, "pink": true, "rtn": true, "saturation": true},
     "scales": {"d2d": 0.5},        (only when a knob of HfOxWeakReset.scaled differs from 1)
     "provenance": {"source": ..., "sha256": ..., "fit_date": ..., "rramk_version": ..., ...}}

``load_preset(path)`` returns the frozen device the file describes (floats are
written with ``repr``, so a file round-trips exactly); ``HfOxWeakReset.save(path)`` writes one.
The published fit ships as ``presets/hfox_ted2021.json`` (``PUBLISHED``); ``rramk.fit`` writes
fitted ones. Distribution families are the classes of ``rramk.device.distributions``.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

from .config import IMPERFECTIONS, DeviceFamily
from .distributions import DISTRIBUTIONS
from .families import family_class

FORMAT = "rramk.preset/1"
PUBLISHED = Path(__file__).with_name("presets") / "hfox_ted2021.json"
"""The published fit of MODEL.md (IEEE TED 68(10), 2021) as a preset file: loads as ``HfOxWeakReset()``."""

UNITS = {
    "m1": "1/pulse", "t_star": "pulses", "c1": "ln R (dimensionless)", "m2": "1/pulse", "r0": "ohm",
    "a_rtn": "ln R", "pink_alpha": "ln R per unit of filtered uniform draw", "pink_order": "taps",
    "pink_d": "dimensionless", "rtn_p01": "per pulse", "rtn_p10": "per pulse", "max_pulses": "pulses per step",
}
"""The unit of every parameter of HfOxWeakReset, as written into preset files."""
FAMILY_UNITS = {"HfOxWeakReset": UNITS, "SoftBounds": {
    **UNITS, "rate": "fraction of the remaining window per pulse", "g_max": "read quantity (the preset's unit)",
    "g0": "read quantity (the preset's unit)", "a_rtn": "read quantity", "pink_alpha": "read quantity per unit of "
    "filtered uniform draw"}, "Bidirectional": {
    **UNITS, "rate_up": "fraction of the way to the upper soft target per pulse", "rate_down": "fraction of the way "
    "to the lower soft target per pulse", "g_min": "read quantity (the preset's unit)", "g_max": "read quantity "
    "(the preset's unit)", "g0": "read quantity (the preset's unit)", "a_rtn": "read quantity", "linearity_up":
    "mean ranges beyond g_max", "linearity_down": "mean ranges below g_min", "pink_alpha": "relative sd of a step"}}
"""Each family's units (a soft-bounds preset states its read quantity's unit in its description)."""


class PresetWarning(UserWarning):
    """A preset that loads but should not be trusted (its fit did not describe its traces)."""


class PresetError(ValueError):
    """A preset file that cannot be read: the message names the file and what is wrong."""


def preset_dict(config: DeviceFamily, *, name: str = "", description: str = "", provenance: dict | None = None,
                fit: dict | None = None) -> dict:
    """The JSON document of ``config`` (see the module docstring)."""
    if not isinstance(config, DeviceFamily):
        raise TypeError(f"config: expected a device (rramk.HfOxWeakReset, SoftBounds), got {type(config).__name__}")
    from .. import __version__

    family = type(config).__name__
    units = FAMILY_UNITS[family]
    parameters = {}
    for f in dataclasses.fields(config):
        if f.name in IMPERFECTIONS or f.name in config.SCALES.values():
            continue
        value = getattr(config, f.name)
        if f.name in config.D2D_PARAMETERS:
            entry = {"unit": units[f.name], "family": type(value).__name__,
                     **{k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(value).items()}}
        else:
            entry = {"unit": units[f.name], "value": value}
        parameters[f.name] = entry
    document = {"format": FORMAT, "name": name, "description": description,
                **({"device_family": family} if family != "HfOxWeakReset" else {}), "parameters": parameters,
                "imperfections": {n: getattr(config, n) for n in IMPERFECTIONS},
                **({"scales": config.scales} if config.scales else {}),
                "provenance": {"rramk_version": __version__, **(provenance or {})}}
    if fit:
        document["fit"] = fit
    return document


def save_preset(config: DeviceFamily, path, *, name: str = "", description: str = "",
                provenance: dict | None = None, fit: dict | None = None) -> Path:
    """Write ``config`` to ``path`` as a preset file; returns the path."""
    path = Path(path)
    document = preset_dict(config, name=name or path.stem, description=description, provenance=provenance, fit=fit)
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path


def load_preset(path) -> DeviceFamily:
    """The device (``HfOxWeakReset``, ``SoftBounds``: its ``device_family``) a preset file describes
    (``.without/.only`` work on it as on any config).

    Raises PresetError, naming the file and the field, for a file that is not a valid preset.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except OSError as e:
        raise PresetError(f"{path}: cannot read the preset file: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise PresetError(f"{path}: not a JSON file (line {e.lineno}: {e.msg})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PresetError(f"{path}: not an rramk preset file (expected \"format\": \"{FORMAT}\")")
    parameters = document.get("parameters")
    if not isinstance(parameters, dict):
        raise PresetError(f"{path}: expected a \"parameters\" object")
    try:
        cls = family_class(document.get("device_family", "HfOxWeakReset"))
    except ValueError as e:
        raise PresetError(f"{path}: {e}") from None
    fields = {f.name for f in dataclasses.fields(cls)} - set(IMPERFECTIONS) - set(cls.SCALES.values())
    unknown, missing = sorted(set(parameters) - fields), sorted(fields - set(parameters))
    if unknown or missing:
        raise PresetError(f"{path}: " + "; ".join(
            ([f"unknown parameter(s) {', '.join(unknown)}"] if unknown else [])
            + ([f"missing parameter(s) {', '.join(missing)}"] if missing else [])))
    values = {}
    for key, entry in parameters.items():
        if not isinstance(entry, dict):
            raise PresetError(f"{path}: parameter {key}: expected an object with a unit and its value(s)")
        entry = {k: v for k, v in entry.items() if k != "unit"}
        if key in cls.D2D_PARAMETERS:
            family = entry.pop("family", None)
            if family not in DISTRIBUTIONS:
                raise PresetError(f"{path}: parameter {key}: unknown distribution family {family!r}; expected one of "
                                  f"{', '.join(DISTRIBUTIONS)}")
            try:
                values[key] = DISTRIBUTIONS[family](**entry)
            except TypeError as e:
                raise PresetError(f"{path}: parameter {key} ({family}): {e}") from None
        else:
            if set(entry) != {"value"}:
                raise PresetError(f"{path}: parameter {key}: expected {{\"unit\": ..., \"value\": ...}}")
            values[key] = entry["value"]
    switches = document.get("imperfections", {})
    if not isinstance(switches, dict) or set(switches) - set(IMPERFECTIONS):
        raise PresetError(f"{path}: \"imperfections\" maps some of {', '.join(IMPERFECTIONS)} to true/false")
    scales = document.get("scales", {})
    if not isinstance(scales, dict) or set(scales) - set(cls.SCALES):
        raise PresetError(f"{path}: \"scales\" maps some of {', '.join(cls.SCALES)} to factors")
    try:
        config = cls(**values, **switches, **{cls.SCALES[k]: v for k, v in scales.items()})
    except ValueError as e:
        raise PresetError(f"{path}: {e}") from None
    _warn_if_inadequate(path, document.get("fit"))
    return config


def _warn_if_inadequate(path: Path, fit) -> None:
    """rramk.fit records whether its family described the traces (rramk.fitting.adequacy); a preset whose
    family did not still loads, with a warning, since its results would be about another device."""
    adequacy = fit.get("adequacy") if isinstance(fit, dict) else None
    if isinstance(adequacy, dict) and adequacy.get("describes") is False:
        warnings.warn(f"{path}: rramk.fit found that the {adequacy.get('family', 'fitted')} family does not describe "
                      f"the traces this preset was fitted to ({adequacy.get('failed')} of {adequacy.get('checks')} "
                      f"ln R quantile checks failed): what it answers is about another device than the one measured",
                      PresetWarning, stacklevel=3)
