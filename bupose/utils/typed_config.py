"""Frozen dataclasses from plain nested data (the YAML form), every key checked.

The reader behind ``bupose.config``: ``build_dataclass`` builds a dataclass tree from nested
dicts, coercing each value to its field's type; ``set_dotted`` writes one ``a.b.c=value``
override into that nested data; ``plain`` turns ``dataclasses.asdict`` output back into it.
An unknown key, a value of the wrong type or one outside its closed set of choices is a
ConfigError naming ``source`` (the file, or ``--set``) and the dotted key.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from typing import Any

from bupose.errors import ConfigError


def build_dataclass(cls: Any, data: Any, source: str,
                    choices: Mapping[str, tuple[str, ...]], prefix: str = "") -> Any:
    """An instance of dataclass ``cls`` from the mapping ``data``; missing keys take defaults.

    ``choices`` maps a dotted key (``"loss.tag_loss"``) to the values it may take.
    """
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            raise _unknown(source, dotted, hints)
        kwargs[key] = _coerce(value, hints[key], source, dotted, choices)
        allowed = choices.get(dotted)
        if allowed and kwargs[key] not in allowed:
            raise ConfigError(
                f"{source}: {dotted} is {kwargs[key]!r}; choose one of {', '.join(allowed)}"
            )
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, source: str, key: str,
            choices: Mapping[str, tuple[str, ...]]) -> Any:
    """``value`` converted to type ``tp`` (int/float/str/bool, tuples, dicts, dataclasses)."""
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, source, choices, f"{key}.")
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{source}: {key} must be {type_name(tp)}, got {value!r}")
    if origin is tuple:
        args = typing.get_args(tp)
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], source, key, choices) for v in items)
        if len(items) != len(args):
            raise bad
        return tuple(_coerce(v, a, source, key, choices) for v, a in zip(items, args))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if isinstance(value, float) and not value.is_integer():
            raise bad
        return int(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise bad


def set_dotted(root: Any, data: dict[str, Any], parts: list[str], text: str, source: str) -> None:
    """Write ``text`` at the dotted key ``parts`` of ``data``, the plain form of dataclass ``root``.

    The text is read as YAML (``true``, ``1e-3``, ``[1, 2]``) except for a string field, which
    takes it as is; keys inside a free-form dict field are created as needed.
    """
    cls: Any = root
    node = data
    for i, part in enumerate(parts):
        dotted = ".".join(parts[: i + 1])
        last = i == len(parts) - 1
        if cls is None:  # inside a free-form dict field
            if last:
                node[part] = _yaml_value(text, dotted, source)
            else:
                node = node.setdefault(part, {})
            continue
        hints = typing.get_type_hints(cls)
        if part not in hints:
            raise _unknown(source, dotted, hints)
        tp = hints[part]
        if last:
            node[part] = text if tp is str else _yaml_value(text, dotted, source)
            return
        if dataclasses.is_dataclass(tp):
            cls, node = tp, node[part]
        elif typing.get_origin(tp) is dict:
            cls, node = None, node[part]
        else:
            raise ConfigError(f"{source}: {dotted} is a {type_name(tp)}, it has no sub-keys")


def plain(obj: Any) -> Any:
    """Nested dicts and lists (tuples as lists) of ``obj``, the form YAML writes."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def type_name(tp: Any) -> str:
    """How an error message names type ``tp`` ("a list of 2 values", "a mapping (LossCfg)")."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {type_name(args[0])}"
        return f"a list of {len(args)} values"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _yaml_value(text: str, key: str, source: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: {key}: cannot read {text!r}: {e}") from None


def _unknown(source: str, key: str, known: Any) -> ConfigError:
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ConfigError(f"{source}: unknown key {key!r}{hint} (known: {', '.join(known)})")
