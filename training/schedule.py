"""Warmup-stable-decay (WSD) schedules, as pure functions of the step.

A schedule holds no state beyond its settings: the value at step `s` is computed, never accumulated,
so a resumed run gets exactly the value an uninterrupted one had, and a run can be extended by
raising `total` while it is still in the stable phase. A `warmup` given as a fraction is a fraction
of `total`, so raising `total` would lengthen it too: the trainer resumes with the step count the
run's first start resolved (trainer.resolve_schedules), and only the decay follows the new `total`.

The same shape serves the learning rate (a multiplier of the peak lr) and the masking rate
(`Ramp`: start -> end over a span of steps).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

SHAPES = ("linear", "cosine", "1-sqrt")


def steps_of(value: float | int | None, total: int) -> int:
    """A step count given as steps (int >= 1) or as a fraction of `total` (float < 1)."""
    if value is None:
        return 0
    if isinstance(value, float) and 0 <= value < 1:
        return int(round(value * total))
    if value < 0 or value != int(value):
        raise ValueError(f"expected a step count or a fraction in [0, 1), got {value!r}")
    return int(value)


def decay_curve(progress: float, shape: str) -> float:
    """From 1 at progress 0 down to 0 at progress 1."""
    p = min(max(progress, 0.0), 1.0)
    if shape == "linear":
        return 1.0 - p
    if shape == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    if shape == "1-sqrt":  # Hägele et al. 2024: matches cosine with a short cooldown
        return 1.0 - math.sqrt(p)
    raise ValueError(f"unknown decay shape {shape!r}; choose one of {', '.join(SHAPES)}")


@dataclass(frozen=True)
class WSD:
    """lr multiplier: linear warmup 0 -> 1, flat at 1, then decay 1 -> `min_ratio`.

    `warmup` and `decay` are step counts, or fractions of `total` when given as floats below 1.
    """

    total: int
    warmup: float | int = 0
    decay: float | int = 0.1
    shape: str = "1-sqrt"
    min_ratio: float = 0.0

    def __post_init__(self):
        decay_curve(0.0, self.shape)  # validate the shape early
        if self.total < 1:
            raise ValueError(f"schedule total must be >= 1 step, got {self.total}")
        if self.warmup_steps + self.decay_steps > self.total:
            raise ValueError(
                f"warmup ({self.warmup_steps}) + decay ({self.decay_steps}) steps exceed the "
                f"schedule's {self.total} steps"
            )

    @property
    def warmup_steps(self) -> int:
        return steps_of(self.warmup, self.total)

    @property
    def decay_steps(self) -> int:
        return steps_of(self.decay, self.total)

    def __call__(self, step: int) -> float:
        """Multiplier for optimiser step `step` (0-based: the first update is step 0)."""
        w, d = self.warmup_steps, self.decay_steps
        if step < w:
            return (step + 1) / w
        decay_start = self.total - d
        if step < decay_start or d == 0:
            return 1.0
        # progress reaches 1 at the last step (total - 1) so the final update uses min_ratio
        progress = (step - decay_start + 1) / d
        return self.min_ratio + (1.0 - self.min_ratio) * decay_curve(progress, self.shape)

    def state_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Ramp:
    """A value moving from `start` to `end` between steps `begin` and `begin + steps`.

    Used for the masking rate (e.g. 0.30 -> 0.15 over the first half of training). `steps` may be
    a fraction of `total`.
    """

    start: float
    end: float
    total: int
    steps: float | int = 0
    begin: float | int = 0
    shape: str = "linear"

    def __call__(self, step: int) -> float:
        n = steps_of(self.steps, self.total)
        b = steps_of(self.begin, self.total)
        if n == 0:
            return self.start if step < b else self.end
        progress = (step - b) / n
        return self.end + (self.start - self.end) * decay_curve(progress, self.shape)
