"""Typed decoder I/O: GroupingInputs in, Grouping out; the registry call style still works."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders import (
    DECODERS,
    Grouping,
    GroupingInputs,
    GroupingParams,
    decode_grouping,
    grouping_decoder,
)
from bupose.errors import ConfigError
from tests.decoders.helpers import synthetic_maps


@pytest.mark.parametrize("name", ["ae", "hae"])
def test_typed_inputs_and_output_equal_the_registry_call(name):
    heat, tags = synthetic_maps(np.random.default_rng(4))
    order = (2, 0, 1)
    old_style = DECODERS.get(name)(heat, tags, GroupingParams(), order)
    typed = decode_grouping(grouping_decoder(name), GroupingInputs(heat, tags, order))
    assert isinstance(typed, Grouping) and isinstance(old_style, Grouping)
    grouped, scores = typed  # still unpacks as (grouped, scores)
    assert len(grouped) > 0 and grouped.shape[1:] == (3, 5) and scores.shape == (len(grouped),)
    np.testing.assert_array_equal(grouped, old_style.grouped)
    np.testing.assert_array_equal(scores, old_style.scores)


def test_grouping_decoder_names():
    with pytest.raises(ConfigError, match="unknown decoder"):
        grouping_decoder("aee")
    with pytest.raises(ConfigError, match="own predictor"):
        grouping_decoder("cal")
