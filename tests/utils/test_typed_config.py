"""bupose.utils.typed_config: dataclass trees from plain data, dotted overrides, plain output."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import pytest

from bupose.errors import ConfigError
from bupose.utils.typed_config import build_dataclass, plain, set_dotted, type_name


@dataclass(frozen=True)
class Inner:
    size: tuple[int, int] = (4, 3)
    rate: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outer:
    mode: str = "a"
    steps: tuple[int, ...] = ()
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


CHOICES = {"mode": ("a", "b")}


def test_build_coerces_and_defaults() -> None:
    built = build_dataclass(Outer, {"steps": [3, 5.0], "inner": {"rate": "1e-3"}}, "f.yaml",
                            CHOICES)
    assert built == Outer(steps=(3, 5), inner=Inner(rate=1e-3))
    assert isinstance(built.steps[1], int)


@pytest.mark.parametrize(("data", "words"), [
    ({"mode": "c"}, "f.yaml: mode is 'c'; choose one of a, b"),
    ({"inner": {"size": [1, 2, 3]}}, "inner.size must be a list of 2 values"),
    ({"inner": {"rat": 1}}, "unknown key 'inner.rat'; did you mean rate?"),
    ({"flag": 1}, "flag must be bool"),
    ({"steps": [1.5]}, "steps must be int, got 1.5"),
    ({"inner": 3}, "inner must be a mapping, got int"),
])
def test_build_errors_name_source_and_key(data: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError, match="f.yaml") as err:
        build_dataclass(Outer, data, "f.yaml", CHOICES)
    assert words in str(err.value)


def test_set_dotted_reads_yaml_except_for_strings() -> None:
    data = plain(dataclasses.asdict(Outer()))
    set_dotted(Outer, data, ["mode"], "true", "--set")
    set_dotted(Outer, data, ["flag"], "true", "--set")
    set_dotted(Outer, data, ["inner", "extra", "deep", "x"], "[1, 2]", "--set")
    assert data["mode"] == "true" and data["flag"] is True
    assert data["inner"]["extra"] == {"deep": {"x": [1, 2]}}
    with pytest.raises(ConfigError, match="--set: flag is a bool, it has no sub-keys"):
        set_dotted(Outer, data, ["flag", "x"], "1", "--set")
    with pytest.raises(ConfigError, match="--set: inner.rate: cannot read"):
        set_dotted(Outer, data, ["inner", "rate"], "[1", "--set")


def test_plain_and_type_name() -> None:
    assert plain({"a": (1, (2, 3)), "b": [{"c": ()}]}) == {"a": [1, [2, 3]], "b": [{"c": []}]}
    assert type_name(Inner) == "a mapping (Inner)"
    assert type_name(tuple[float, ...]) == "a list of float"
