"""Pure encode/decode functions for training targets and decoding (numpy in, numpy out)."""

from bupose.codecs.gaussian import gaussian_patch, peak_cells, render_heatmaps
from bupose.codecs.tags import decode_tag_indices, encode_tag_indices

__all__ = [
    "decode_tag_indices",
    "encode_tag_indices",
    "gaussian_patch",
    "peak_cells",
    "render_heatmaps",
]
