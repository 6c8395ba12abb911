"""Folder inference with loading and decoding overlapping the network."""

from __future__ import annotations

import threading

import pytest

from bupose.inference.pipeline import overlapped


def test_results_in_order_equal_a_serial_loop() -> None:
    threads: dict[str, set[str]] = {"read": set(), "net": set(), "finish": set()}

    def read(i: int) -> int | None:
        threads["read"].add(threading.current_thread().name)
        return None if i % 5 == 3 else i * 10

    def net(x: int) -> int:
        threads["net"].add(threading.current_thread().name)
        return x + 1

    def finish(i: int, x: int, y: int) -> tuple[int, int, int]:
        threads["finish"].add(threading.current_thread().name)
        return i, x, y

    got = list(overlapped(range(23), read, net, finish, depth=3))
    want = [(i, None if i % 5 == 3 else (i, i * 10, i * 10 + 1)) for i in range(23)]
    assert got == want
    assert threads["net"] == {threading.current_thread().name}
    assert threads["read"].isdisjoint(threads["net"] | threads["finish"])


@pytest.mark.parametrize("stage", ["read", "net", "finish"])
def test_an_error_surfaces_at_its_item(stage: str) -> None:
    def fail_at_4(name: str):  # noqa: ANN202
        def f(*args: int) -> int:
            if stage == name and args[0] in (4, 41):
                raise ValueError(f"{name} failed")
            return args[-1]
        return f

    seen = []
    with pytest.raises(ValueError, match=f"{stage} failed"):
        for item, _ in overlapped(range(10), fail_at_4("read"), fail_at_4("net"),
                                  fail_at_4("finish")):
            seen.append(item)
    assert seen == list(range(len(seen))) and len(seen) <= 4


def test_empty_input() -> None:
    assert list(overlapped([], lambda i: i, lambda x: x, lambda i, x, y: y)) == []
