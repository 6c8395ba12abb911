import pytest
import torch

from bupose.errors import ConfigError
from bupose.losses import PoseLoss, ae_loss, hae_loss, heatmap_loss
from bupose.models.outputs import StageOutput
from bupose.structures.spec import CROWDPOSE14

K = CROWDPOSE14.num_keypoints


def higherhrnet_batch(ae_batch, seed=0, tag_dim=1):
    """Two-stage HigherHRNet-like outputs (stride 4 with tags, stride 2 heatmaps) + targets."""
    tags, idx = ae_batch(seed, k=K, tag_dim=tag_dim, h=6, w=7)
    g = torch.Generator().manual_seed(seed)
    b = tags.shape[0]
    outputs = (torch.cat([torch.rand(b, K, 6, 7, generator=g), tags], dim=1),
               torch.rand(b, K, 12, 14, generator=g))
    targets = {
        "heatmaps": [torch.rand(b, K, 6, 7, generator=g), torch.rand(b, K, 12, 14, generator=g)],
        "masks": [torch.ones(b, 6, 7), (torch.rand(b, 12, 14, generator=g) > 0.3).float()],
        "tag_indices": idx,
    }
    layout = (StageOutput(4, K, K * tag_dim), StageOutput(2, K))
    return layout, outputs, targets


def test_ae_terms_are_weighted_batch_means(ae_batch):
    layout, outputs, targets = higherhrnet_batch(ae_batch)
    terms = PoseLoss(layout, "ae", heatmaps_factor=(1.0, 0.5))(outputs, targets)
    assert set(terms) == {"heatmap/0", "heatmap/1", "ae/pull", "ae/push"}
    hm1 = heatmap_loss(outputs[1], targets["heatmaps"][1], targets["masks"][1]).mean()
    torch.testing.assert_close(terms["heatmap/1"], 0.5 * hm1)
    ae = ae_loss(outputs[0][:, K:], targets["tag_indices"])
    torch.testing.assert_close(terms["ae/pull"], 0.001 * ae.pull.mean())
    torch.testing.assert_close(terms["ae/push"], 0.001 * ae.push.mean())


def test_hae_terms_sum_to_reference_pull(ae_batch):
    layout, outputs, targets = higherhrnet_batch(ae_batch, 1)
    groups = CROWDPOSE14.get_groups("hierarchical_crowdpose")
    terms = PoseLoss(layout, "hae", groups=groups)(outputs, targets)  # o, l, h = 0, 1, 1.5
    assert set(terms) == {"heatmap/0", "heatmap/1", "hae/pull_keypoint_group",
                          "hae/pull_group_instance", "hae/push"}
    r = hae_loss(outputs[0][:, K:], targets["tag_indices"], groups)
    pull = 0.001 * (r.pull_keypoint_group + 1.5 * r.pull_group_instance).mean()
    torch.testing.assert_close(terms["hae/pull_keypoint_group"] + terms["hae/pull_group_instance"],
                               pull)
    with_o = PoseLoss(layout, "hae", groups=groups, o_weight=2.0)(outputs, targets)
    torch.testing.assert_close(with_o["hae/pull_keypoint_instance"],
                               0.002 * r.pull_keypoint_instance.mean())


def test_ae_with_focal_is_instance_level_focal_pull(ae_batch):
    layout, outputs, targets = higherhrnet_batch(ae_batch, 2)
    terms = PoseLoss(layout, "ae", focal="iqr")(outputs, targets)
    r = hae_loss(outputs[0][:, K:], targets["tag_indices"], (), focal="iqr")
    torch.testing.assert_close(terms["ae/pull"], 0.001 * r.pull_keypoint_instance.mean())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", ["ae", "hae"])
def test_low_precision_outputs_give_float32_terms(ae_batch, dtype, kind):
    layout, outputs, targets = higherhrnet_batch(ae_batch, 3, tag_dim=2)
    loss = PoseLoss(layout, kind, groups=CROWDPOSE14.get_groups(), ae_type="max")
    low = [o.to(dtype) for o in outputs]
    terms = loss(low, targets)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms_autocast = loss(low, targets)
    ref = loss([o.float() for o in low], targets)
    for name, value in terms.items():
        assert value.dtype == torch.float32 and terms_autocast[name].dtype == torch.float32
        torch.testing.assert_close(value, ref[name])


@pytest.mark.parametrize("focal", ["none", "iqr", "gamma"])
@pytest.mark.parametrize("kind", ["ae", "hae"])
def test_all_terms_have_finite_gradients_even_when_all_masked(ae_batch, kind, focal):
    layout, outputs, targets = higherhrnet_batch(ae_batch, 4)
    targets["masks"] = [torch.zeros_like(m) for m in targets["masks"]]
    outputs = [o.clone().requires_grad_(True) for o in outputs]
    terms = PoseLoss(layout, kind, groups=CROWDPOSE14.get_groups(), focal=focal)(outputs, targets)
    for name, value in terms.items():
        (grad,) = torch.autograd.grad(value, outputs[0], retain_graph=True, allow_unused=True)
        assert grad is None or torch.isfinite(grad).all(), name
    sum(terms.values()).backward()
    assert all(torch.isfinite(o.grad).all() for o in outputs)
    assert terms["heatmap/0"] == 0 and terms["heatmap/1"] == 0


def test_per_stage_tag_indices_and_suffixes(ae_batch):
    tags, idx = ae_batch(5, k=3)
    outputs = (tags.repeat(1, 2, 1, 1), tags.repeat(1, 2, 1, 1))  # 3 heatmaps + 3 tags each
    layout = (StageOutput(4, 3, 3), StageOutput(4, 3, 3))
    targets = {"heatmaps": [tags, tags], "masks": [torch.ones(3, 6, 7)] * 2,
               "tag_indices": [idx, idx]}
    terms = PoseLoss(layout, "ae", pull_factor=(1.0, 2.0))(outputs, targets)
    assert set(terms) == {"heatmap/0", "heatmap/1", "ae/pull/0", "ae/push/0", "ae/pull/1",
                          "ae/push/1"}
    torch.testing.assert_close(terms["ae/pull/1"], 2 * terms["ae/pull/0"])
    assert terms["heatmap/0"] == 0


def test_configuration_errors():
    layout = (StageOutput(4, K, K), StageOutput(2, K))
    with pytest.raises(ConfigError, match="groups"):
        PoseLoss(layout, "hae")
    with pytest.raises(ConfigError, match="outside"):
        PoseLoss(layout, "hae", groups=((0, K),))
    with pytest.raises(ConfigError, match="tag channels"):
        PoseLoss(layout, "ae", with_ae=(True, True))
    with pytest.raises(ConfigError, match="entries"):
        PoseLoss(layout, heatmaps_factor=(1.0,))
    with pytest.raises(ConfigError, match="focal"):
        PoseLoss(layout, focal="tukey")
    assert PoseLoss(layout, "none").with_ae == (False, False)
