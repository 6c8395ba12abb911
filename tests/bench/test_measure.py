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
