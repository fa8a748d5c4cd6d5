"""The checker's report: one row per array, the tolerance it used, and words for what it found.

A row (:class:`ParamCheck`) keeps the worst entry not at a kink, its analytic and numeric
values and their ratio, and counts the entries that failed, that sat at a kink, and that
passed only thanks to the rounding floor.  The report (:class:`GradcheckReport`) prints
them as a table, then the tolerance, then one line on the worst entry: a constant ratio is
read as the factor it is (2, 1/n, −1), and a square gradient that is the transpose of the
finite differences is said to be.
"""

import fractions
from typing import NamedTuple

import numpy as np

ROUNDING_ULPS = 8            # ulps of the loss's scale each evaluation may be off by
SUSPECT = 1e-2               # a failing entry with rel ≤ 1e-2 is "suspect", above it "wrong"


def ratio_words(ratio):
    """Read analytic / numeric as a factor: '2', '1/4', '-1' — or None if it is no simple one."""
    if not np.isfinite(ratio) or ratio == 0:
        return None
    close = fractions.Fraction(float(ratio)).limit_denominator(64)
    if abs(float(close) - ratio) > 1e-4 * abs(ratio) or close == 1:
        return None
    return str(close)


def verdict(rel_error, *, failed=True, at_kink=False):
    """The word for an entry or a row: good, ok only near a kink, suspect, wrong."""
    if not failed:
        return "good"
    if at_kink:
        return "ok only near a kink"
    return "suspect" if rel_error <= SUSPECT else "wrong"


class ParamCheck(NamedTuple):
    """One array's result.  ``max_rel_error`` and the worst entry are over the entries not at a
    kink; ``ratio`` is analytic / numeric there; ``constant_ratio`` is set when every entry
    resolved above the floor shows the same ratio (a factor, not noise)."""

    name: str
    shape: tuple
    n_checked: int
    max_rel_error: float
    max_abs_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    n_kinks: int
    n_failed: int = 0            # entries failing, not at a kink
    n_below_floor: int = 0       # entries that passed only thanks to atol
    ratio: float = float("nan")
    constant_ratio: float = float("nan")
    transposed: bool = False     # a square gradient that is the transpose of the numeric one

    @property
    def verdict(self):
        return verdict(self.max_rel_error, failed=self.n_failed > 0 or self.n_kinks > 0,
                       at_kink=self.n_failed == 0 and self.n_kinks > 0)


class GradcheckReport:
    """The checker's result: one row per array, the tolerance used, and the verdict.

    ``passed`` is True when every entry passes or is excused by a kink at that entry;
    ``max_rel_error`` is the largest relative error over the entries not at a kink.
    """

    def __init__(self, rows, eps, *, atol, rtol, loss_scale):
        self.rows = list(rows)
        self.eps, self.atol, self.rtol, self.loss_scale = eps, atol, rtol, loss_scale

    @property
    def max_rel_error(self):
        return max((r.max_rel_error for r in self.rows), default=0.0)

    @property
    def passed(self):
        return all(r.n_failed == 0 for r in self.rows)

    @property
    def worst(self):
        """The row whose worst entry is farthest outside the tolerance (failing rows first)."""
        return max(self.rows, key=lambda r: (r.n_failed > 0, r.max_rel_error))

    @property
    def verdict(self):
        failing = [r for r in self.rows if r.n_failed]
        if failing:
            return verdict(max(r.max_rel_error for r in failing))
        return "ok only near a kink" if any(r.n_kinks for r in self.rows) else "good"

    def __getitem__(self, name):
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def tolerance_line(self):
        return (f"tolerance |a − n| ≤ atol + rtol·|n|: rtol = {self.rtol:g}, "
                f"atol = {self.atol:.2g}, the "
                f"rounding floor {ROUNDING_ULPS}·ε·|L|/h of a loss of scale |L| = {self.loss_scale:.4g}")

    def explain(self):
        """One line on the worst entry not at a kink: where, a, n, their ratio and what it suggests."""
        r = self.worst
        if not (r.n_failed or r.n_kinks):
            floor = sum(row.n_below_floor for row in self.rows)
            return ("every entry agrees" + (f" ({floor} below the rounding floor, where finite "
                                           "differences cannot tell)" if floor else ""))
        if not r.n_failed:
            kinks = sum(row.n_kinks for row in self.rows)
            return (f"{kinks} entr{'y' if kinks == 1 else 'ies'} straddle a kink (a point where the "
                    "function is not differentiable, relu at 0): there the finite difference, not "
                    "the gradient, is off; every other entry agrees")
        line = (f"worst entry not at a kink: {r.name}{list(r.worst_index)}, analytic {r.analytic:.6g}, "
                f"numeric {r.numeric:.6g}, analytic/numeric = {r.ratio:.6g}")
        factor = ratio_words(r.constant_ratio)
        if r.transposed:
            line += f"; {r.name}'s gradient is the transpose of the right one (Xᵀ dY, not (Xᵀ dY)ᵀ)"
        elif factor == "-1":
            line += f"; every entry of {r.name} has the wrong sign"
        elif factor is not None:
            line += (f"; every entry of {r.name} is off by the same factor {factor} "
                     "(a constant factor: a missing or extra 2, 1/n, a mean for a sum)")
        elif np.isfinite(r.constant_ratio) and abs(r.constant_ratio - 1) > 1e-9:
            line += (f"; every entry of {r.name} is off by the same factor {r.constant_ratio:.6g} "
                     "(a constant in the formula)")
        return line

    def __str__(self):
        header = (f"{'parameter':<16} {'shape':<12} {'checked':>7} {'max rel err':>11} "
                  f"{'max abs err':>11} {'worst at':<12} {'analytic':>11} {'numeric':>11} "
                  f"{'a/n':>8}  verdict")
        lines = [header, "-" * len(header)]
        for r in self.rows:
            notes = [f"{r.n_failed} failing" if r.n_failed else "",
                     f"{r.n_kinks} at a kink" if r.n_kinks else "",
                     f"{r.n_below_floor} below floor" if r.n_below_floor else ""]
            note = ", ".join(n for n in notes if n)
            lines.append(
                f"{r.name:<16} {str(r.shape):<12} {r.n_checked:>7} {r.max_rel_error:>11.2e} "
                f"{r.max_abs_error:>11.2e} {str(r.worst_index):<12} {r.analytic:>11.4g} "
                f"{r.numeric:>11.4g} {r.ratio:>8.4g}  {r.verdict}" + (f" ({note})" if note else ""))
        lines.append(f"max relative error {self.max_rel_error:.2e} (central differences, "
                     f"h = {self.eps:g}): {self.verdict}")
        lines.append(self.tolerance_line())
        lines.append(self.explain())
        return "\n".join(lines)

    __repr__ = __str__
