"""The issue's targets: each gets a row with the measured value, the target, met or not,
and by how much it was missed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TargetResult:
    """One target against its measurement.

    Attributes:
        name: what is compared, in words.
        measured: the measured value (None when it could not be measured).
        target: the bound.
        unit: unit of both values.
        higher_is_better: True for ``measured >= target`` targets, False for ``<=``.
        met: True/False, or None when unmeasured.
        shortfall: how far off, as a ratio > 1 (target/measured for ``>=`` targets,
            measured/target for ``<=`` ones); None when met or unmeasured.
        note: what was compared, or why it is unmeasured.
    """

    name: str
    measured: float | None
    target: float
    unit: str
    higher_is_better: bool
    met: bool | None
    shortfall: float | None
    note: str = ""

    def verdict(self) -> str:
        """``yes``, ``no (1.7x short)`` / ``no (1.7x over)``, or ``not measured``."""
        if self.met is None:
            return "not measured"
        if self.met:
            return "yes"
        if self.shortfall is None:
            return "no (number met, condition failed: see note)"
        word = "short" if self.higher_is_better else "over"
        return f"no ({self.shortfall:.3f}x {word})"


def evaluate(
    name: str,
    measured: float | None,
    target: float,
    unit: str,
    higher_is_better: bool = True,
    note: str = "",
    extra_condition: bool | None = True,
) -> TargetResult:
    """Compare ``measured`` with ``target``.

    Args:
        extra_condition: a further condition the target needs (e.g. INT8 accuracy within
            the export limit): False makes the target missed even when the number is met;
            None (condition unknown) leaves a met number met but says so in ``note``.
    """
    if measured is None or measured != measured:  # None or NaN
        return TargetResult(name, None, target, unit, higher_is_better, None, None, note)
    if target <= 0 or measured <= 0:
        raise ValueError(
            f"{name}: target and measurement must be positive, got {target}, {measured}"
        )
    number_met = measured >= target if higher_is_better else measured <= target
    met = number_met and extra_condition is not False
    if number_met:
        shortfall = None
    else:
        shortfall = target / measured if higher_is_better else measured / target
    return TargetResult(name, measured, target, unit, higher_is_better, met, shortfall, note)
