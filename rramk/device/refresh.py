"""Refresh: when a synapse can no longer move, SET both its devices and re-write its weight.

Weak-RESET pulses only raise resistance, so every device drifts into its saturated regime
(t >= t_star, slope m2 << m1) and its synapse stops learning (MODEL.md 3, 4). A chip would SET
both devices back to low resistance (a new cycle, ``weak_reset.weak_reset_set``) and write the
weight again. This module is the policy: which synapses are due, and how often to look.
Conditions (``Refresh.condition``; syntax in :meth:`Refresh.parse`):

* ``past_t_star``: either device has t >= its t_star;
* ``window``: both devices have t >= (1 - margin) * t_star, i.e. used all but a fraction ``margin``
  of their fast window m1 * t_star (a fraction, so a device with a small window is not SET over
  and over; margin 0: both past t_star);
* ``pulses``: either device has had ``limit`` pulses since its SET. The two above read each
  device's own t_star, which a chip cannot observe; a pulse counter it can, with ``limit`` from
  the population (e.g. the preset's median t_star). It needs no device model: one torch
  comparison of the counters on every backend;
* ``resistance``: either device reads at least ``above`` ohm, each read with white noise of sd
  ``check_noise`` of ln R (a chip reads R through its sense amplifier; ``resistance_due``): what a
  chip sees of a used-up device, a high R, with the read's error.
"""

from __future__ import annotations

import dataclasses

import torch

from . import streams, model_tables, weak_reset

CONDITIONS = ("past_t_star", "window", "pulses", "resistance")


@dataclasses.dataclass(frozen=True)
class Refresh:
    """A refresh policy: after every ``every``-th optimizer step, SET the synapses whose
    ``condition`` holds and re-write their weights with at most ``max_write_pulses`` pulses."""

    condition: str = "past_t_star"
    """``past_t_star`` (either device past its t_star) or ``window`` (both within ``margin``)."""

    margin: float = 0.0
    """``window``: the fraction of its fast window, (t_star - t) / t_star, at or below which a device counts as used up."""

    limit: int = 0
    """``pulses``: the RESET pulses since its last SET at which a device makes its synapse due (>= 1)."""

    every: int = 1
    """Check the condition after every ``every``-th step of a weight tensor (1: every step)."""

    max_write_pulses: int = 1023
    """Most RESET pulses that re-write a weight after a SET (program and verify; bisection depth)."""

    retries: int = 0
    """SETs after a re-write that does not read the weight held (each a new cycle); 0: a failure stays."""

    read_noise: float = 0.0
    """White noise of each verify read of a re-write, sd of ln R (0: the verify reads the mean exactly)."""

    verify_margin: float = 0.0
    """ln R by which a re-written device's verify read must pass its partner's (0: just pass)."""

    above: float = 0.0
    """``resistance``: the resistance (ohm) at or above which a device's read makes its synapse due."""

    check_noise: float = 0.0
    """``resistance``: white noise of the condition's reads, sd of ln R (0: the read is the device's ln R)."""

    def __post_init__(self):
        if self.condition not in CONDITIONS:
            raise ValueError(f"refresh: unknown condition {self.condition!r}; expected one of {', '.join(CONDITIONS)}")
        if not (isinstance(self.margin, (int, float)) and 0 <= self.margin < 1):
            raise ValueError(f"refresh: margin: expected a fraction in [0, 1) of the fast window, got {self.margin!r}")
        if self.condition != "window" and self.margin != 0:
            raise ValueError(f"refresh: margin applies to the 'window' condition only, not {self.condition!r}")
        if self.condition == "pulses" and not (isinstance(self.limit, int) and 1 <= self.limit <= streams.PULSES_MASK):
            raise ValueError(f"refresh: pulses: expected limit=N, an integer in [1, {streams.PULSES_MASK}] (RESET "
                             f"pulses since the last SET), got {self.limit!r}; e.g. 'pulses:limit=542'")
        if self.condition != "pulses" and self.limit != 0:
            raise ValueError(f"refresh: limit applies to the 'pulses' condition only, not {self.condition!r}")
        if self.condition == "resistance" and not (isinstance(self.above, (int, float)) and self.above > 0):
            raise ValueError(f"refresh: resistance: expected above=R, a resistance > 0 in ohm, got {self.above!r}; "
                             "e.g. 'resistance:above=10900,check_noise=0.02'")
        if self.condition != "resistance" and (self.above != 0 or self.check_noise != 0):
            raise ValueError(f"refresh: above and check_noise apply to the 'resistance' condition only, not "
                             f"{self.condition!r}")
        if not (isinstance(self.check_noise, (int, float)) and self.check_noise >= 0):
            raise ValueError(f"refresh: check_noise: expected the sd of ln R of a read, >= 0, got {self.check_noise!r}")
        if not (isinstance(self.every, int) and self.every >= 1):
            raise ValueError(f"refresh: every: expected an integer >= 1 (steps), got {self.every!r}")
        if not (isinstance(self.retries, int) and self.retries >= 0):
            raise ValueError(f"refresh: retries: expected an integer >= 0 (SETs after a failed re-write), "
                             f"got {self.retries!r}")
        if not (isinstance(self.read_noise, (int, float)) and self.read_noise >= 0):
            raise ValueError(f"refresh: read_noise: expected the sd of ln R of a verify read, >= 0, got "
                             f"{self.read_noise!r}")
        if not (isinstance(self.verify_margin, (int, float)) and self.verify_margin >= 0):
            raise ValueError(f"refresh: verify_margin: expected ln R >= 0, got {self.verify_margin!r}")
        if not (isinstance(self.max_write_pulses, int) and 0 <= self.max_write_pulses <= streams.PULSES_MASK):
            raise ValueError(f"refresh: max_write_pulses: expected an integer in [0, {streams.PULSES_MASK}], "
                             f"got {self.max_write_pulses!r}")

    @classmethod
    def parse(cls, text: str | None) -> "Refresh | None":
        """The policy a command line (``python -m rramk.train --refresh``) writes as
        ``CONDITION[:key=value,...]`` with keys ``margin``, ``limit``, ``every``, ``max_write_pulses``,
        ``retries``, ``read_noise``, ``verify_margin``, ``above`` and ``check_noise``, e.g. ``past_t_star``,
        ``window:margin=0.05,every=10``, ``pulses:limit=542``, ``resistance:above=10900,check_noise=0.02``; None for
        ``off`` (the default: no refresh) or None."""
        if text is None or text.strip().lower() == "off":
            return None
        condition, _, options = text.strip().partition(":")
        kinds = {"margin": float, "limit": int, "every": int, "max_write_pulses": int, "retries": int,
                 "read_noise": float, "verify_margin": float, "above": float, "check_noise": float}
        values = {}
        for item in filter(None, (o.strip() for o in options.split(","))):
            key, eq, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not eq or key not in kinds:
                raise ValueError(f"refresh: cannot read {item!r}; expected key=value with a key among "
                                 f"{', '.join(kinds)}, e.g. 'window:margin=0.05,every=10'")
            try:
                values[key] = kinds[key](value)
            except ValueError:
                raise ValueError(f"refresh: {key}: expected a{'n integer' if kinds[key] is int else ' number'}, "
                                 f"got {value!r}") from None
        return cls(condition.strip().lower(), **values)

    def __str__(self) -> str:
        options = [f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                   if f.name != "condition" and getattr(self, f.name) != f.default]
        return self.condition + (":" + ",".join(options) if options else "")

    def due_at(self, step: int) -> bool:
        """Whether the condition is checked after the (1-based) step ``step``."""
        return step % self.every == 0


def pulses_due(device_state: torch.Tensor, limit: int) -> torch.Tensor:
    """bool (N,): the ``pulses`` condition, either device with t >= ``limit`` (reads the counters only)."""
    return (weak_reset.unpack_device_state(device_state)[0] >= limit).any(0)


def refresh_due(device_state: torch.Tensor, *, config, seed, condition: str, margin: float, first=0,
                constants: model_tables.ModelConstants | None = None) -> torch.Tensor:
    """bool (N,): the synapses of a slice (flat indices first ..) whose ``condition`` (``past_t_star`` or
    ``window``) holds.

    t_star is the devices' own (cycle 0), regenerated from the counters; t is the pulse count
    since the last SET.
    """
    if constants is None:
        constants = model_tables.model_constants(config, device_state.device)
    index = weak_reset.synapse_index(first, device_state.shape[1], device_state.device)
    t = weak_reset.unpack_device_state(device_state)[0]
    params = weak_reset.d2d_parameters(config, constants, weak_reset.d2d_words(seed, index),
                                       weak_reset.side_index(device_state.device))
    tf = t.to(params["t_star"].dtype)
    if condition == "past_t_star":
        return (tf >= params["t_star"]).any(0)
    return (tf >= (1.0 - margin) * params["t_star"]).all(0)


def resistance_due(log_r: torch.Tensor, *, seed, updates: int, above: float, check_noise: float, first=0) -> torch.Tensor:
    """bool (N,): the ``resistance`` condition of a slice (flat indices first ..): either device's read ln R
    + sqrt(6) check_noise (u + u' - 1) >= ln ``above``, ``log_r`` (2, N) the devices' ln R as the last update
    left it, u, u' words 0, 1 of the CHECK stream's call of the device (c2/c3 = ``updates``)."""
    index = weak_reset.synapse_index(first, log_r.shape[1], log_r.device)
    read = log_r
    if check_noise:
        counter = torch.as_tensor(updates, dtype=torch.int64, device=log_r.device)
        noise = []
        for side in weak_reset.SIDES:
            words = weak_reset.philox4x32(seed, index, streams.counter_stream(streams.STREAM_CHECK, side),
                                          counter & weak_reset.MASK32, counter >> 32)
            u = [weak_reset.uniform_from_bits(w, log_r.dtype) for w in words[:2]]
            noise.append((weak_reset.VERIFY_NOISE_SCALE * check_noise) * ((u[0] + u[1]) - 1.0))
        read = log_r + torch.stack(noise)
    return (read >= torch.log(torch.tensor(above, dtype=torch.float64)).to(log_r.dtype)).any(0)
