"""HigherHRNet / bottom-up heads: layout, shapes, concatenation."""

from __future__ import annotations

import pytest
import torch

from bupose.models.heads import HigherHRNetHead


def test_higher_head_shapes_and_layout() -> None:
    head = HigherHRNetHead(8, num_keypoints=4, deconv_channels=(6,))
    assert head.deconv_layers[0][0][0].in_channels == 8 + 8  # features + K heatmaps + K tags
    a, b = head(torch.randn(2, 8, 5, 7))
    assert a.shape == (2, 8, 5, 7) and b.shape == (2, 4, 10, 14)
    assert [s.stride for s in head.output_layout] == [4, 2]


@pytest.mark.parametrize("kernel", [2, 3, 4])
def test_deconv_kernels_double_the_size(kernel: int) -> None:
    head = HigherHRNetHead(8, 3, deconv_channels=(4,), deconv_kernels=(kernel,),
                           cat_output=(False,), num_basic_blocks=1)
    assert head.deconv_layers[0][0][0].in_channels == 8
    assert head(torch.randn(1, 8, 6, 5))[1].shape == (1, 3, 12, 10)


def test_bottom_up_head_and_final_kernel() -> None:
    head = HigherHRNetHead(8, 3, deconv_channels=(), deconv_kernels=(), cat_output=(),
                           tag_stages=(True,), final_conv_kernel=3)
    (out,) = head(torch.randn(1, 8, 6, 6))
    assert out.shape == (1, 6, 6, 6) and len(head.deconv_layers) == 0


def test_inconsistent_lengths_are_errors() -> None:
    with pytest.raises(ValueError, match="tag_stages"):
        HigherHRNetHead(8, 3, deconv_channels=(4,), tag_stages=(True,))
