"""The tables a device config turns into, once: D2D quantiles, RTN flip probabilities, pink taps.

Every backend reads the model through these tensors (``ModelConstants``; the Triton launchers
through ``kernel_arguments``), computed in float64 and rounded once, so switching an imperfection
off is data (a table of means, alpha = 0, no flip), not code, and one compilation serves a whole
ablation study (``compiled_structure``). The reference of the update is ``weak_reset.py``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch

from . import streams
from .config import IMPERFECTIONS, DeviceFamily, HfOxWeakReset
from .streams import RTN_TABLE_SIZE

# Rows of the D2D lookup table: the six parameters and ln R0, derived in float64.
TABLE_ROWS = streams.D2D_TABLE_ROWS


class ModelConstants(NamedTuple):
    """Tensors derived once from a config (float64 math, then rounded): the kernels' inputs too."""

    d2d_table: torch.Tensor  # (7, 2**10), soft bounds (27, 2**10): quantiles of each D2D parameter (the mean: d2d off)
    rtn_flip: torch.Tensor  # (2, RTN_TABLE_SIZE): P(flip after n pulses) from state 0 and from state 1
    pink_taps: torch.Tensor  # (positions, 4): tap of each window position for each block shift (kernel)
    pink_b: torch.Tensor  # (order,): filter taps b_k
    pink_alpha: torch.Tensor  # (): alpha, 0 with pink off (bidirectional: sqrt(6) alpha, the step noise's scale)
    saturation: torch.Tensor  # () bool: two slopes (False: m2 = m1); soft bounds: the bound (False: linear)
    pair_table: torch.Tensor = torch.empty(0)  # (2, 2**10) the d2d_pair knob's copula (pair_table()); empty: off


def pink_blocks(order: int) -> int:
    """Philox blocks of 4 uniforms that can hold a window of ``order`` consecutive pulses."""
    return (order + 2) // streams.PINK_BLOCK + 1


def _d2d_table(config: DeviceFamily) -> torch.Tensor:
    """Rows TABLE_ROWS x 2**10 quantiles (float64), the knobs of ``config.scaled`` applied; a knob at 1
    is skipped, so the fit's table is the same bits with or without them. A soft-bounds table fills the
    slots (``streams.SOFT_BOUNDS_SLOTS``) and adds the POWER_ROWS rows of 1 - (1 - rate)^(2^b)."""
    size = streams.D2D_TABLE_SIZE
    if config.d2d:
        rows = {name: getattr(config, name).quantile_table(size) for name in config.D2D_PARAMETERS}
    else:  # every quantile is the published mean after truncation: every device takes the means
        rows = {name: torch.full((size,), getattr(config, name).mean_truncated, dtype=torch.float64)
                for name in config.D2D_PARAMETERS}
    if config.d2d:
        for name in config.D2D_PARAMETERS:
            factor = spread_factor(config, name)
            if factor != 1.0:
                rows[name] = scaled_spread(rows[name], getattr(config, name).mean_truncated, factor,
                                           log_space=name in config.LOG_SPACE)
    if getattr(config, "t_star_scale", 1.0) != 1.0:
        rows["t_star"] = rows["t_star"] * config.t_star_scale
    if config.rtn_scale != 1.0:
        rows["a_rtn"] = rows["a_rtn"] * config.rtn_scale
    if config.FAMILY == streams.FAMILY_SOFT_BOUNDS:
        return _soft_bounds_table(config, rows)
    if config.FAMILY == streams.FAMILY_BIDIRECTIONAL:
        return _bidirectional_table(config, rows)
    rows["ln_r0"] = torch.log(rows["r0"])
    return torch.stack([rows[name] for name in TABLE_ROWS])


def pair_table(config: DeviceFamily) -> torch.Tensor:
    """The d2d_pair knob's Gaussian copula (float64; empty where it is off: the knob at 1, or d2d off):
    row 0 the normal scores z_i = Phi^-1((i + 1/2) / S) of the S quantile indices, row 1 starts with
    rho = 1 - f^2 and sqrt(1 - rho^2). BLb's index of a parameter becomes the largest i with
    z_i <= rho z_BL + sqrt(1 - rho^2) z_BLb (``rramk.device.weak_reset.paired_words``): its marginal
    stays the population's (up to the index grid), its normal score correlates with BL's by rho."""
    f = getattr(config, "d2d_pair_scale", 1.0)
    if f == 1.0 or not config.d2d:
        return torch.empty(0, dtype=torch.float64)
    size = streams.D2D_TABLE_SIZE
    scores = torch.special.ndtri((torch.arange(size, dtype=torch.float64) + 0.5) / size)
    rho = 1.0 - f * f
    coefficients = torch.zeros(size, dtype=torch.float64)
    coefficients[0], coefficients[1] = rho, math.sqrt(max(0.0, 1.0 - rho * rho))
    return torch.stack([scores, coefficients])


def _soft_bounds_table(config: DeviceFamily, rows: dict) -> torch.Tensor:
    """The slots of a soft-bounds table and its power rows (float64), from its parameters' rows (``streams``)."""
    if not bool(rows["g_max"].min() > rows["g0"].max()):
        raise ValueError(f"{config.scales or 'the fit'}: a bound g_max ({rows['g_max'].min().item():.4g}) lies at or "
                         f"below a reset state g0 ({rows['g0'].max().item():.4g}); a soft-bounds device needs every "
                         "g_max above every g0 (a smaller spread knob)")
    zero = torch.zeros_like(rows["rate"])
    slots = {slot: rows[name] for name, slot in config.TABLE_NAMES.items()}
    slots["ln_r0"] = slots["r0"]  # the read adds y0 = g0 itself
    table = [slots.get(name, zero) for name in TABLE_ROWS]
    log_q = torch.log1p(-rows["rate"])
    table += [-torch.expm1(float(2 ** b) * log_q) for b in range(streams.POWER_ROWS)]
    return torch.stack(table)


def _bidirectional_table(config: DeviceFamily, rows: dict) -> torch.Tensor:
    """The slots of a bidirectional table, its power rows of both directions and its soft targets (float64)."""
    if not (bool(rows["g_max"].min() > rows["g0"].max()) and bool(rows["g0"].min() > rows["g_min"].max())):
        raise ValueError(f"{config.scales or 'the fit'}: a reset state g0 lies outside its bounds [g_min, g_max] "
                         "(a smaller spread knob)")
    zero = torch.zeros_like(rows["g0"])
    slots = {slot: rows[name] for name, slot in config.TABLE_NAMES.items()}
    slots["ln_r0"] = slots["r0"]  # the read adds y0 = g0 itself
    table = [slots.get(name, zero) for name in TABLE_ROWS]
    for rate in ("rate_up", "rate_down"):
        log_q = torch.log1p(-rows[rate])
        table += [-torch.expm1(float(2 ** b) * log_q) for b in range(streams.STEP_BITS)]
    span = config.g_max.mean_truncated - config.g_min.mean_truncated
    table += [rows["g_max"] + config.linearity_up * span, rows["g_min"] - config.linearity_down * span]
    return torch.stack(table)


def spread_factor(config: DeviceFamily, name: str) -> float:
    """The factor on the D2D spread of parameter ``name``: the product of its knobs' (``SPREADS``)."""
    return math.prod(getattr(config, config.SCALES[knob]) for knob, names in config.SPREADS.items() if name in names)


def scaled_spread(row: torch.Tensor, mean: float, s: float, log_space: bool) -> torch.Tensor:
    """A D2D table row with its spread scaled by ``s`` around ``mean``, which stays (float64).

    Log space (a positive parameter): x -> mean e^{s (ln x - mu)} / Z, mu = mean(ln x), Z = mean(e^{s (ln x
    - mu)}): std(ln x) becomes s std(ln x), every value stays > 0, and s = 0 gives ``mean`` exactly (the
    table of d2d off). Linear (c1; a positive row with a value <= 0, as a fitted preset may hold):
    mean + s (x - mean), clamped at 0 for such a positive row, and only there."""
    if log_space and bool((row > 0).all()):
        z = torch.exp(s * (torch.log(row) - torch.log(row).mean()))
        return mean * z / z.mean()
    scaled = mean + s * (row - mean)
    return scaled.clamp(min=0.0) if log_space else scaled


def knob_measures(config: HfOxWeakReset) -> dict[str, float]:
    """Each knob of ``HfOxWeakReset.scaled`` in the unit a device engineer measures, over the devices
    this config draws (every entry of its D2D table is equally likely):

    * ``sigma_ln_r_0``: standard deviation of ln R at t = 0 across devices, sqrt(var ln R0 + var c1)
      (R0 and c1 are drawn independently; the d2d and d2d_r knobs);
    * ``sigma_pair_ln_r_0``: standard deviation of ln R_BL - ln R_BLb at t = 0 across synapses, the
      mismatch of a pair (sqrt 2 sigma_ln_r_0 for independent devices; the d2d_pair knob);
    * ``sigma_m1``: standard deviation of m1 across devices, 1/pulse;
    * ``sigma_ln_m1``, ``sigma_ln_t_star``, ``sigma_ln_m2``: standard deviation of ln m1, ln t*, ln m2
      across devices (the d2d_m1, d2d_t_star, d2d_m2 knobs scale them exactly);
    * ``median_t_star``: median saturation onset across devices, pulses (the t_star knob);
    * ``alpha``: the 1/f amplitude in ln R (0 with pink off; the pink knob);
    * ``a_rtn_max``: the largest RTN amplitude bound of any device, ln R (0 with rtn off; the rtn knob).

    Soft bounds and bidirectional: ``sigma_g0``, ``sigma_g_max`` (the reset state's, the (upper) bound's spread),
    ``sigma_ln_rate`` (of ln rate, rate_up), ``alpha`` and ``a_rtn_max`` in the family's read quantity.
    """
    table = _d2d_table(config)
    row = {name: table[i] for i, name in enumerate(TABLE_ROWS)}

    def spread(x: torch.Tensor) -> float:  # population variance: the table is the distribution
        return 0.0 if bool((x == x[0]).all()) else x.var(correction=0).item()

    if config.FAMILY != streams.FAMILY_TWO_SLOPES:  # soft bounds, bidirectional: their parameters' spreads
        rate = row["m1"]
        return {"sigma_g0": math.sqrt(spread(row["r0"])), "sigma_g_max": math.sqrt(spread(row["m2"])),
                "sigma_ln_rate": math.sqrt(spread(torch.log(rate))),
                "alpha": config.pink_alpha * config.pink_scale if config.pink else 0.0,
                "a_rtn_max": row["a_rtn"].max().item() if config.rtn else 0.0}

    f = getattr(config, "d2d_pair_scale", 1.0)
    return {"sigma_ln_r_0": math.sqrt(spread(row["ln_r0"]) + spread(row["c1"])),
            "sigma_pair_ln_r_0": math.sqrt(pair_mismatch_variance(row["ln_r0"], f)
                                           + pair_mismatch_variance(row["c1"], f)),
            "sigma_m1": math.sqrt(spread(row["m1"])),
            **{f"sigma_ln_{name}": math.sqrt(spread(torch.log(row[name]))) if bool((row[name] > 0).all())
               else math.nan for name in ("m1", "t_star", "m2")},
            "median_t_star": row["t_star"].quantile(0.5).item(),
            "alpha": config.pink_alpha * config.pink_scale if config.pink else 0.0,
            "a_rtn_max": row["a_rtn"].max().item() if config.rtn else 0.0}


def pair_mismatch_variance(row: torch.Tensor, f: float) -> float:
    """Var(x_BL - x_BLb) of a parameter whose quantiles are ``row`` under the d2d_pair knob ``f``, over every
    pair of indices (float64, the copula of ``pair_table``): 2 var(x) at f = 1 (independent), 0 at f = 0."""
    size = row.shape[0]
    scores = torch.special.ndtri((torch.arange(size, dtype=torch.float64) + 0.5) / size)
    rho = 1.0 - f * f
    target = rho * scores[:, None] + math.sqrt(max(0.0, 1.0 - rho * rho)) * scores[None, :]
    paired = (torch.searchsorted(scores, target, right=True) - 1).clamp(min=0)
    return (row[:, None] - row[paired]).pow(2).mean().item()


def _rtn_flip_table(config: HfOxWeakReset) -> torch.Tensor:
    if not config.rtn:  # no trap ever flips: every state stays 0 and w_rtn = 0
        return torch.zeros(2, RTN_TABLE_SIZE, dtype=torch.float64)
    total = config.rtn_p01 + config.rtn_p10
    pi = torch.tensor([[config.rtn_p01 / total], [config.rtn_p10 / total]], dtype=torch.float64)
    n = torch.arange(RTN_TABLE_SIZE, dtype=torch.float64)
    return pi * -torch.expm1(n * math.log1p(-total))


def _pink_taps(config: HfOxWeakReset) -> torch.Tensor:
    """taps[p, shift] = b_k for the pulse at window position p, k = order - 1 + shift - p (0 outside)."""
    b = config.pink_coefficients()
    order = config.pink_order
    positions = pink_blocks(order) * streams.PINK_BLOCK
    taps = torch.zeros(positions, streams.PINK_BLOCK, dtype=torch.float64)
    for shift in range(streams.PINK_BLOCK):
        for p in range(positions):
            k = order - 1 + shift - p
            if 0 <= k < order:
                taps[p, shift] = b[k]
    return taps


@functools.lru_cache(maxsize=64)
def model_constants(config: HfOxWeakReset, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """The ModelConstants of ``config`` on ``device`` in ``dtype`` (cached)."""
    alpha = config.pink_alpha * config.pink_scale if config.pink else 0.0
    if config.FAMILY == streams.FAMILY_BIDIRECTIONAL:  # the step noise's sd: sqrt(6) (u + u' - 1) has sd 1
        alpha *= math.sqrt(6.0)
    constants = ModelConstants(
        d2d_table=_d2d_table(config),
        rtn_flip=_rtn_flip_table(config),
        pink_taps=_pink_taps(config),
        pink_b=torch.tensor(config.pink_coefficients(), dtype=torch.float64),
        pink_alpha=torch.tensor(alpha, dtype=torch.float64),
        saturation=torch.tensor(config.saturation),
        pair_table=pair_table(config),
    )
    return ModelConstants(*(c.to(device=device, dtype=dtype if c.is_floating_point() else c.dtype)
                            for c in constants))


def kernel_arguments(config: HfOxWeakReset, device) -> dict:
    """Everything the Triton launchers need of ``config``, as tensors (float32, on ``device``) and flags."""
    constants = model_constants(config, torch.device(device), torch.float32)
    return dict(d2d_table=constants.d2d_table.contiguous(), rtn_flip=constants.rtn_flip.contiguous(),
                pink_taps=constants.pink_taps.contiguous(), pink_alpha=float(constants.pink_alpha),
                pink_order=config.pink_order, pink_on=config.pink, rtn_on=config.rtn,
                saturation_on=config.saturation, family=config.FAMILY,
                pair_table=constants.pair_table.contiguous() if constants.pair_table.numel() else None)


def compiled_structure(config: HfOxWeakReset) -> HfOxWeakReset:
    """The config that compiled code is specialised on: every imperfection on, the same filter order.

    With ``model_constants(config)``, whose tables switch the imperfections off as data (alpha = 0,
    no RTN flip, a D2D table of means, m2 = m1), it computes the same bits as ``config`` itself,
    so one compilation serves a whole ablation study.
    """
    return type(config)(pink_order=config.pink_order, pink_d=config.pink_d, **{name: True for name in IMPERFECTIONS})
