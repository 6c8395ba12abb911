"""Test-time settings of the AE family (HigherHRNet, HAE, fusion model): one typed structure.

Every place that decides how a model is tested resolves into ``TestSettings``:

* a checkpoint's ``model.meta`` (``test`` dict + ``input_size``; written by ``bupose train`` with
  ``TestSettings.to_meta``, or read from an official YAML's ``TEST.*`` by ``load_checkpoint``);
* a recipe's ``eval:`` section (``TestSettings.updated_from(cfg.eval)``: fields are matched by
  name, so the recipe keys ARE the settings keys);
* command-line flags (``TestSettings.replace(**flags)``, ``None`` = not given).

Order: flag > checkpoint / official YAML / recipe > the defaults below, which are the official
HigherHRNet / mmpose 0.x test settings of the released models (ALGORITHMS.md §2.5, §3.8).

Keys: the fields of ``TestSettings`` and of ``GroupingParams`` form one flat namespace
(``replace(detection_threshold=0.2, flip=False)``). In ``model.meta.test`` the official TEST key
names are used where the official code has one (``flip_test``, ``scale_factor``,
``max_num_people``, ``with_heatmaps``, ``with_ae``: ``META_KEYS``); official keys bupose does not
use (``nms_padding``, ``ignore_center`` ...) are ignored when read. As in the official code a
given ``max_people`` (MAX_NUM_PEOPLE) is also the top-k unless ``top_k`` is given with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bupose.decoders.params import GroupingParams
from bupose.errors import ConfigError

# meta.test / official TEST key (lower case) -> flat settings key, where the names differ
META_KEYS: dict[str, str] = {
    "flip_test": "flip",
    "scale_factor": "scales",
    "max_num_people": "max_people",
    "with_heatmaps": "use_heatmaps",
    "with_ae": "use_tags",
}
_TO_META = {v: k for k, v in META_KEYS.items()}
_GROUPING_KEYS = tuple(f.name for f in dataclasses.fields(GroupingParams))


@dataclass(frozen=True)
class TestSettings:
    """How one model is tested.

    Attributes:
        decoder: a ``bupose.decoders.DECODERS`` name ("ae" fixed joint order, "hae" progressive).
        input_size: network input side of the short image side at the smallest scale, pixels
            (official DATASET.INPUT_SIZE).
        flip: flip test (official TEST.FLIP_TEST).
        scales: test scale factors (TEST.SCALE_FACTOR).
        project2image: resize the maps to the input resolution before aggregation.
        use_heatmaps / use_tags: per model output, whether its heatmaps / tags are used
            (TEST.WITH_HEATMAPS / TEST.WITH_AE); None = every output that has them.
        grouping: the decoder's thresholds and flags.
    """

    __test__ = False  # not a pytest test class

    decoder: str = "ae"
    input_size: int = 512
    flip: bool = True
    scales: tuple[float, ...] = (1.0,)
    project2image: bool = True
    use_heatmaps: tuple[bool, ...] | None = None
    use_tags: tuple[bool, ...] | None = None
    grouping: GroupingParams = field(default_factory=GroupingParams)

    def __post_init__(self) -> None:
        if not self.scales or any(not s > 0 for s in self.scales):
            raise ConfigError(f"test scales must be positive numbers, got {list(self.scales)}")
        if self.input_size < 1:
            raise ConfigError(f"input_size must be >= 1, got {self.input_size}")
        if not self.decoder:
            raise ConfigError("no decoder name")

    def replace(self, **values: Any) -> TestSettings:
        """A copy with the given flat keys changed (``None`` values are ignored).

        Raises:
            ConfigError: an unknown key or a value that does not fit.
        """
        given = {k: v for k, v in values.items() if v is not None}
        if "max_people" in given and "top_k" not in given:
            given["top_k"] = given["max_people"]
        unknown = sorted(set(given) - set(settings_keys()))
        if unknown:
            raise ConfigError(f"unknown test setting(s) {', '.join(unknown)} "
                              f"(known: {', '.join(settings_keys())})")
        own = {k: _coerce(k, v) for k, v in given.items() if k not in _GROUPING_KEYS}
        grouping = {k: _coerce(k, v) for k, v in given.items() if k in _GROUPING_KEYS}
        if grouping:
            own["grouping"] = dataclasses.replace(self.grouping, **grouping)
        return dataclasses.replace(self, **own)

    def updated_from(self, source: Any) -> TestSettings:
        """A copy with every attribute of ``source`` whose name is a settings key (e.g. a
        recipe's ``EvalCfg``: decoder, flip, scales, max_people, thresholds ...)."""
        return self.replace(**{k: getattr(source, k) for k in settings_keys()
                               if hasattr(source, k)})

    def flat(self) -> dict[str, Any]:
        """Every setting under its flat key (GroupingParams fields inlined)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name != "grouping"}
        out.update(dataclasses.asdict(self.grouping))
        return out

    def to_meta(self) -> dict[str, Any]:
        """The ``model.meta.test`` dict (official key names, JSON types; no input_size, which
        ``ModelMeta`` holds itself)."""
        out: dict[str, Any] = {}
        for key, value in self.flat().items():
            if key == "input_size" or value is None:
                continue
            out[_TO_META.get(key, key)] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_meta(
        cls, test: Mapping[str, Any] | None, input_size: Any = None,
        base: TestSettings | None = None,
    ) -> TestSettings:
        """Settings from a ``model.meta.test`` dict (official or flat key names, any case) and
        the meta's input size, over ``base`` (default: the defaults). Unused official keys are
        ignored."""
        values: dict[str, Any] = {}
        known = set(settings_keys())
        for key, value in (test or {}).items():
            name = META_KEYS.get(str(key).lower(), str(key).lower())
            if name in known:
                values[name] = value
        if isinstance(input_size, int) and not isinstance(input_size, bool):
            values["input_size"] = input_size
        return (base or cls()).replace(**values)


def settings_keys() -> tuple[str, ...]:
    """The flat keys ``TestSettings.replace`` accepts."""
    own = tuple(f.name for f in dataclasses.fields(TestSettings) if f.name != "grouping")
    return own + _GROUPING_KEYS


def settings_for_model(model: Any, **flags: Any) -> TestSettings:
    """The model's settings (``model.meta``: checkpoint or official YAML, else the defaults) with
    the given flags (``None`` = not given) on top."""
    meta = getattr(model, "meta", None)
    base = TestSettings.from_meta(getattr(meta, "test", None), getattr(meta, "input_size", None))
    return base.replace(**flags)


def _coerce(key: str, value: Any) -> Any:
    """``value`` in the type of setting ``key`` (YAML/JSON lists become tuples)."""
    try:
        if key == "scales":
            items = value if isinstance(value, (list, tuple)) else [value]
            return tuple(float(v) for v in items)
        if key in ("use_heatmaps", "use_tags"):
            items = value if isinstance(value, (list, tuple)) else [value]
            return tuple(bool(v) for v in items)
        if key in ("decoder", "solver"):
            return str(value)
        default = _DEFAULTS[key]
        if isinstance(default, bool):
            if not isinstance(value, (bool, int)):
                raise TypeError
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise TypeError
            return int(value)
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"test setting {key}: cannot use {value!r}") from None


_DEFAULTS: dict[str, Any] = TestSettings().flat()
