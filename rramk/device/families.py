"""The device families by name, and a device of any family from its dict (checkpoints, summaries, presets).

A dict without ``device_family`` is an ``HfOxWeakReset`` (as every rramk before the families wrote it).
"""

from __future__ import annotations

from .config import DeviceFamily, HfOxWeakReset
from .bidirectional import Bidirectional
from .soft_bounds import SoftBounds

FAMILIES = {"HfOxWeakReset": HfOxWeakReset, "SoftBounds": SoftBounds, "Bidirectional": Bidirectional}


def family_class(name: str) -> type[DeviceFamily]:
    """The family called ``name`` (a key of ``FAMILIES``); a clear error names the others."""
    if name not in FAMILIES:
        raise ValueError(f"device_family: unknown family {name!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def device_from_dict(data: dict) -> DeviceFamily:
    """Inverse of ``to_dict`` for a device of any family."""
    return family_class(data.get("device_family", "HfOxWeakReset")).from_dict(data)
