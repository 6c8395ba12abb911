"""CAL targets against every case of shared/fixtures/official_cal/targets (from the recorded
joints in input px): heatmap, offsets, mask_g to 1e-6; mask_01 and target_weight exactly."""

import numpy as np
import pytest

from bupose.codecs.cal import encode_cal_targets, feat_stride, window_weight
from tests.conftest import SHARED, require

TARGETS = SHARED / "fixtures" / "official_cal" / "targets"


@pytest.mark.parametrize("case", ["64x48", "64x48_w48", "128x96", "64x48_train", "128x96_train"])
def test_targets_equal_the_reference(case):
    with np.load(require(TARGETS / f"targets_{case}.npz")) as f:
        d = {k: f[k] for k in f.files}
    sigma, locref, mask_sigma, kpd = (float(v) for v in d["params"])
    wh = tuple(int(v) for v in d["image_size_wh"])
    hm_wh = tuple(int(v) for v in d["heatmap_size_wh"])
    np.testing.assert_allclose(feat_stride(wh, hm_wh), d["feat_stride"], rtol=1e-12)
    for p in range(len(d["image_id"])):
        t = encode_cal_targets(d["joints_input"][p][:, :2], d["joints_vis_input"][p][:, 0], wh,
                               hm_wh, sigma, locref, mask_sigma, kpd)
        assert t.heatmaps.dtype == np.float32 and t.offsets.shape == d["target_offset"][p].shape
        np.testing.assert_allclose(t.heatmaps, d["target"][p], atol=1e-6, rtol=0)
        np.testing.assert_allclose(t.offsets, d["target_offset"][p], atol=1e-6, rtol=0)
        np.testing.assert_allclose(t.mask_g, d["mask_g"][p], atol=1e-6, rtol=0)
        np.testing.assert_array_equal(t.mask_01, d["mask_01"][p])
        np.testing.assert_array_equal(t.target_weight, d["target_weight"][p])


def test_window_rule_and_zero_maps():
    """A visible joint whose 3σ window misses the map gets weight 0 and all-zero maps; one just
    outside the map whose window still overlaps keeps weight 1 (the reference's rule)."""
    joints = np.array([[-20.0, 20.0], [-3.0, 20.0], [20.0, 30.0]])
    t = encode_cal_targets(joints, np.array([1, 1, 0]), (48, 64), (12, 16), 0.3, 1.5, 0.3, 4.0)
    assert t.target_weight[:, 0].tolist() == [0.0, 1.0, 0.0]
    assert not t.heatmaps[0].any() and not t.offsets[0:2].any() and not t.mask_g[2].any()
    assert t.mask_01[1].any()
    # int() truncates toward zero: mu = int(-0.6 + 0.5) = 0, window [-1, 2) overlaps column 0
    assert window_weight(np.array([-0.6, 3.0]), (12, 16), 0.3)
    assert not window_weight(np.array([-2.6, 3.0]), (12, 16), 0.3)
