"""bupose.bench.measure: interleaved timing rounds (A B A B ...) and their medians."""

from __future__ import annotations

import pytest

from bupose.bench import measure


class FakeClock:
    """``time.perf_counter`` stand-in that the timed functions advance."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_interleaved_rounds_and_medians(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(measure.time, "perf_counter", clock)
    calls: list[str] = []
    durations = {"a": iter([100.0, 1.0, 3.0, 2.0]), "b": iter([100.0, 10.0, 30.0, 20.0])}

    def step(name: str) -> None:
        calls.append(name)
        clock.now += next(durations[name])

    out = measure.interleaved_medians({"a": lambda: step("a"), "b": lambda: step("b")},
                                      repeat=3, warmup=1)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds, in turn
    assert out == {"a": 2.0, "b": 20.0}  # the warm-up's 100 s is not counted


@pytest.mark.parametrize(("repeat", "warmup"), [(0, 1), (1, -1)])
def test_interleaved_rejects_bad_counts(repeat, warmup):
    with pytest.raises(ValueError, match="repeat >= 1"):
        measure.interleaved_medians({"a": lambda: None}, repeat, warmup)


def test_conv_peak_is_the_fastest_run_of_each_format(monkeypatch):
    """A peak, not a median: one slow or fast outlier per format, the fastest run counts."""
    times = iter([0.5, 0.1, 0.3, 0.2, 0.4, 0.8])  # nchw runs, then nhwc runs
    monkeypatch.setattr(measure, "_seconds", lambda fn: next(times))
    out = measure.conv_peak_gflops(repeat=3, warmup=0)
    flops = 2.0 * 128 * 128 * 9 * 128 * 128 / 1e9
    assert out["nchw"] == pytest.approx(flops / 0.1)
    assert out["nhwc"] == pytest.approx(flops / 0.2)
    assert out["peak"] == out["nchw"]


def test_higher_peak_takes_each_key_from_the_better_measurement():
    a, b = {"nchw": 10.0, "nhwc": 30.0, "peak": 30.0}, {"nchw": 20.0, "nhwc": 25.0, "peak": 25.0}
    assert measure.higher_peak(a, b) == {"nchw": 20.0, "nhwc": 30.0, "peak": 30.0}
