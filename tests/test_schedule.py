"""The WSD learning-rate schedule and the masking-rate ramp."""

import math

import pytest

from twbert.training.schedule import WSD, Ramp, decay_curve, steps_of


def test_wsd_phases_linear():
    s = WSD(total=100, warmup=10, decay=20, shape="linear")
    assert [s(i) for i in range(10)] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert all(s(i) == 1.0 for i in range(10, 80))
    decay = [s(i) for i in range(80, 100)]
    assert decay == pytest.approx([1 - (i + 1) / 20 for i in range(20)])
    assert s(99) == 0.0  # the last update uses min_ratio


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
def test_decay_shapes_are_monotone_from_1_to_min(shape):
    s = WSD(total=50, warmup=0, decay=0.5, shape=shape, min_ratio=0.1)
    values = [s(i) for i in range(50)]
    assert values[:25] == [1.0] * 25
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(0.1)
    assert 0.1 < values[25] < 1.0


def test_shapes_differ_where_they_should():
    mid = 0.25
    assert decay_curve(mid, "linear") == pytest.approx(0.75)
    assert decay_curve(mid, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert decay_curve(mid, "1-sqrt") == pytest.approx(0.5)


def test_fractions_and_counts():
    assert steps_of(0.05, 1000) == 50
    assert steps_of(50, 1000) == 50
    assert steps_of(None, 10) == 0
    with pytest.raises(ValueError):
        steps_of(-1, 10)
    s = WSD(total=1000, warmup=0.05, decay=0.1)
    assert (s.warmup_steps, s.decay_steps) == (50, 100)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="decay shape"):
        WSD(total=10, shape="exp")
    with pytest.raises(ValueError, match="exceed"):
        WSD(total=10, warmup=6, decay=6)


def test_schedule_is_a_function_of_step_only():
    a, b = WSD(total=200, warmup=20, decay=0.3), WSD(total=200, warmup=20, decay=0.3)
    forward = [a(i) for i in range(200)]
    assert [b(i) for i in reversed(range(200))][::-1] == forward
    assert WSD(**a.state_dict()) == a


def test_mask_rate_ramp():
    r = Ramp(start=0.3, end=0.15, total=100, steps=0.5)
    assert r(0) == pytest.approx(0.3)
    assert r(25) == pytest.approx(0.225)
    assert r(50) == pytest.approx(0.15) and r(99) == pytest.approx(0.15)
    assert Ramp(start=0.3, end=0.3, total=10)(7) == 0.3
