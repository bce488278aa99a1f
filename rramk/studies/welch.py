"""Welch's t-test, with its own Student t: the test behind every interval and "resolved" of the studies.

A claim is "resolved" when Welch's two-sided LEVEL interval of a difference of means over seeds excludes
0: Student's t with Welch-Satterthwaite degrees of freedom, computed here without scipy (the regularized
incomplete beta function by its continued fraction; tests/test_report_statistics.py checks it against closed forms
and scipy).
"""

from __future__ import annotations

import math

LEVEL = 0.95
"""The confidence level of every interval and test of the reports (two-sided)."""


def _incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast below the mean: use the symmetry
        return 1.0 - _incomplete_beta(1.0 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny, f, c, d = 1e-300, 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2:
            numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1))
        else:
            numerator = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + numerator / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-15:
            break
    return front * (f - 1.0)


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom (df may be fractional: Welch)."""
    if math.isnan(t) or math.isnan(df) or df <= 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return _incomplete_beta(df / (df + t * t), df / 2, 0.5)


def t_critical(df: float, level: float = LEVEL) -> float:
    """The two-sided critical value: P(|T| >= t) = 1 - level (nan without degrees of freedom)."""
    if math.isnan(df) or df <= 0:
        return math.nan
    lo, hi = 0.0, 1.0
    while t_two_sided_p(hi, df) > 1 - level:
        hi *= 2
    for _ in range(200):  # bisection: p falls monotonically in t
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_two_sided_p(mid, df) > 1 - level else (lo, mid)
    return (lo + hi) / 2


def welch(cells: list[tuple[float, float, int]], signs: list[int]) -> dict:
    """A signed sum of cell means (mean, std, n per cell; signs +1/-1) with Welch's test that it is 0:
    value, standard error sqrt(sum s^2/n), Welch-Satterthwaite degrees of freedom
    (sum s^2/n)^2 / sum (s^2/n)^2 / (n - 1), two-sided p and the half-width of the LEVEL interval.
    With a cell of one seed, or no spread at all, there is no test (se, df, p, half_width nan)."""
    value = sum(sign * mean for sign, (mean, _, _) in zip(signs, cells))
    nan = {"value": value, "se": math.nan, "df": math.nan, "p": math.nan, "half_width": math.nan}
    if any(n < 2 or math.isnan(std) for _, std, n in cells):
        return nan
    variances = [std ** 2 / n for _, std, n in cells]
    se2 = sum(variances)
    if se2 == 0:
        return {**nan, "se": 0.0}
    df = se2 ** 2 / sum(v ** 2 / (n - 1) for v, (_, _, n) in zip(variances, cells))
    se = math.sqrt(se2)
    return {"value": value, "se": se, "df": df, "p": t_two_sided_p(value / se, df),
            "half_width": t_critical(df) * se}
