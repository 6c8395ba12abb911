"""GroupingParams: official defaults and validation."""

from __future__ import annotations

import dataclasses

import pytest

from bupose.decoders.params import GroupingParams
from bupose.errors import ConfigError


def test_official_defaults():
    p = GroupingParams()
    assert (p.detection_threshold, p.tag_threshold, p.max_people, p.top_k) == (0.1, 1.0, 30, 30)
    assert (p.nms_kernel, p.use_detection_val, p.ignore_too_much) == (5, True, False)
    assert p.adjust and p.refine
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.top_k = 5  # type: ignore[misc]


@pytest.mark.parametrize("kwargs", [
    {"detection_threshold": -0.1}, {"nms_kernel": 4}, {"nms_kernel": 0}, {"max_people": 0},
    {"top_k": 0}, {"tag_threshold": float("nan")},
])
def test_invalid_values_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        GroupingParams(**kwargs)
