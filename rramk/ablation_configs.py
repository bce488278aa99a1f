"""The configurations of the ablation study, named once (MODEL.md section 4).

``ideal`` is the software BNN (no device); ``none`` the devices' mean behaviour, every imperfection
off; ``all`` every imperfection on; ``only X`` one imperfection on top of ``none``; ``all but X``
the full model minus one. A label names its configuration everywhere: ``--configs`` of
``python -m rramk.ablation``, tables and figures, and, as its slug, run directories. The device
characterization (``python -m rramk.characterize``) simulates ``all`` and each ``all but X`` under
their captions ``full model`` and ``no X``, the names its committed figures carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from .device.config import IMPERFECTIONS, HfOxWeakReset


@dataclass(frozen=True)
class AblationConfig:
    """One configuration of the study: its label, the imperfections it switches on, its caption."""

    label: str
    """How the study names it: ``only d2d``, ``all but rtn``."""

    imperfections: tuple[str, ...] | None
    """The imperfections on, in the order of IMPERFECTIONS; None: the ideal software BNN (no device)."""

    caption: str | None = None
    """Its name in the device characterization, if it is one of the configurations characterized."""

    @property
    def slug(self) -> str:
        """The label as a directory name: ``all-but-d2d``."""
        return slug(self.label)

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

    def device(self) -> HfOxWeakReset | None:
        """The device model (None for the ideal software BNN)."""
        return None if self.imperfections is None else HfOxWeakReset().only(*self.imperfections)


def _registry() -> dict[str, AblationConfig]:
    configs = [AblationConfig("ideal", None), AblationConfig("none", ()),
               AblationConfig("all", IMPERFECTIONS, caption="full model")]
    configs += [AblationConfig(f"only {name}", (name,)) for name in IMPERFECTIONS]
    configs += [AblationConfig(f"all but {name}", tuple(n for n in IMPERFECTIONS if n != name), caption=f"no {name}")
                for name in IMPERFECTIONS]
    return {c.label: c for c in configs}


ABLATIONS: dict[str, AblationConfig] = _registry()
"""Every configuration of the study by label, in the order of its tables."""

CHARACTERIZED: tuple[AblationConfig, ...] = tuple(c for c in ABLATIONS.values() if c.caption)
"""The configurations of the device characterization: the full model, then each imperfection off alone."""


def slug(label: str) -> str:
    """A label as a directory name: spaces become hyphens (``all but d2d`` -> ``all-but-d2d``)."""
    return label.replace(" ", "-")


def label_of(directory: str) -> str:
    """The label whose slug is ``directory`` (the name itself for a directory of no known configuration)."""
    return next((c.label for c in ABLATIONS.values() if c.slug == directory), directory)
