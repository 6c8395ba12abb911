"""AE targets of one image: heatmaps per resolution, masks, tag indices at resolution 0."""

import numpy as np

from bupose.codecs.tags import decode_tag_indices
from bupose.data.targets import encode_ae_targets


def two_resolutions(rng: np.random.Generator, n: int = 4, k: int = 17):
    kps128 = np.concatenate([rng.uniform(-5, 133, (n, k, 2)), rng.integers(0, 3, (n, k, 1))], -1)
    kps256 = kps128.copy()
    kps256[..., :2] *= 2
    masks = [np.ones((128, 128), np.float32), np.ones((256, 256), np.float32)]
    masks[0][:10] = 0
    return [kps128.astype(np.float32), kps256.astype(np.float32)], masks


def test_shapes_and_layout():
    kps, masks = two_resolutions(np.random.default_rng(0))
    t = encode_ae_targets(kps, masks, sigma=2.0, max_people=30)
    assert [h.shape for h in t.heatmaps] == [(17, 128, 128), (17, 256, 256)]
    assert all(h.dtype == np.float32 for h in t.heatmaps)
    assert [m.shape for m in t.masks] == [(128, 128), (256, 256)]
    np.testing.assert_array_equal(t.masks[0], masks[0])
    assert t.tag_indices.shape == (30, 17, 2) and t.tag_indices.dtype == np.int64


def test_heatmap_peaks_at_official_cells_and_tags_point_there():
    kps, masks = two_resolutions(np.random.default_rng(1))
    t = encode_ae_targets(kps, masks)
    for r, size in enumerate([128, 256]):
        for p, k in zip(*np.nonzero(kps[r][..., 2] > 0)):
            x, y = int(kps[r][p, k, 0]), int(kps[r][p, k, 1])  # the official int() cell
            if 0 <= x < size and 0 <= y < size:
                assert t.heatmaps[r][k, y, x] == 1.0
    jxy, valid = decode_tag_indices(t.tag_indices, (128, 128))
    assert valid.any()
    for p, k in zip(*np.nonzero(valid)):
        j, x, y = jxy[p, k]
        assert j == k and t.heatmaps[0][k, y, x] == 1.0
        assert (x, y) == (int(kps[0][p, k, 0]), int(kps[0][p, k, 1]))
