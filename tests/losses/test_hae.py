import math

import numpy as np
import pytest
import torch

from bupose.errors import ConfigError
from bupose.losses.ae import ae_loss, push_loss
from bupose.losses.hae import focal_push, gamma_weights, group_matrix, hae_loss, iqr_weights
from bupose.structures.spec import COCO17, CROWDPOSE14


def np_iqr_weights(values):
    """(n, D) -> (n,) weights: Tukey fences per component with numpy's lower/higher percentiles,
    applied to the ACTUAL joints (the reference's sorted-list bug fixed)."""
    q1 = np.quantile(values, 0.25, axis=0, method="lower")
    q3 = np.quantile(values, 0.75, axis=0, method="higher")
    iqr = q3 - q1
    out = ((values < q1 - 1.5 * iqr) | (values > q3 + 1.5 * iqr)).any(axis=1)
    return np.where(out, 2.0, 1.0)


def np_gamma_weights(values, gamma):
    d = np.linalg.norm(values - values.mean(axis=0), axis=1)
    return 1.0 + (d / d.max()) ** gamma if d.max() > 0 else np.ones(len(d))


def weighted_pull(values, focal, gamma):
    """(mean (D,), mean_k w_k ||t_k - mean||^2) of one set, numpy float64."""
    w = {"none": lambda v: np.ones(len(v)), "iqr": np_iqr_weights,
         "gamma": lambda v: np_gamma_weights(v, gamma)}[focal](values)
    mean = values.mean(axis=0)
    return mean, float(np.mean(w * ((values - mean) ** 2).sum(axis=1)))


def reference_hae(tags, tag_indices, groups, tag_dim, focal="none", gamma=2.0):
    """Per-image, per-person, per-group loop of the HAE AEgroupLoss semantics (ALGORITHMS.md §3.4)
    with membership by true joint id (slot k = joint k). Returns O/(NK), Lg/(NK), Hg/(NK), push."""
    tags = tags.double().numpy()
    _, _, h, w = tags.shape
    k_num = tag_indices.shape[2]
    out = []
    for b in range(tags.shape[0]):
        means, o, lg, hg = [], 0.0, 0.0, 0.0
        for person in tag_indices[b].tolist():
            joints = {}
            for k, (index, valid) in enumerate(person):
                if valid > 0:
                    y, x = divmod(index % (h * w), w)
                    joints[k] = tags[b, k * tag_dim:(k + 1) * tag_dim, y, x]
            if not joints:
                continue
            mean, pull = weighted_pull(np.stack(list(joints.values())), focal, gamma)
            means.append(mean)
            o += k_num * pull
            for group in groups:
                members = [joints[k] for k in group if k in joints]
                if members:
                    g_mean, g_pull = weighted_pull(np.stack(members), focal, gamma)
                    lg += len(group) * g_pull
                    hg += float(((mean - g_mean) ** 2).sum())
        n = len(means)
        push = 0.0
        if n > 1:
            hm = np.stack(means)
            push = (np.exp(-((hm[:, None] - hm[None]) ** 2).sum(-1)).sum() - n) / (n * (n - 1)) / 2
        norm = max(n, 1) * k_num
        out.append([o / norm, lg / norm, hg / norm, push])
    return torch.tensor(out).T.float()


def test_hand_computed_example():
    # K = 4 joints, groups g0 = (0, 1, 2) (|g0| = 3) and g1 = (3,), one image, tag dim 1.
    # Person A: all joints visible, tags (1, 3, 2, 6) -> h_A = 3.
    #   O_A  = K * mean((1-3)^2, 0, (2-3)^2, (6-3)^2) = 4 * 14/4 = 14
    #   g0: h = 2, mean sq dev = (1 + 1 + 0)/3 -> |g0| * 2/3 = 2;  g1: h = 6, 0.   Lg_A = 2
    #   Hg_A = (3-2)^2 + (3-6)^2 = 10
    # Person B: joints 0 and 3 only, tags (4, 5) -> h_B = 4.5. (With the reference's packed list,
    #   g0 = positions 0..2 would take joints 0 AND 3 as group members; here g0 = {joint 0}.)
    #   O_B = 4 * mean(0.25, 0.25) = 1;  g0: {4} -> 0;  g1: {5} -> 0.   Lg_B = 0
    #   Hg_B = (4.5-4)^2 + (4.5-5)^2 = 0.5
    # Row 3 has no valid joint: N = 2, N K = 8.
    # O/(NK) = 15/8, Lg/(NK) = 2/8, Hg/(NK) = 10.5/8, push = 0.5 * 2 e^{-(3-4.5)^2} / (2*1).
    h, w = 1, 4
    maps = torch.zeros(4, h, w)
    idx = torch.zeros(1, 3, 4, 2, dtype=torch.long)
    for k, tag in enumerate([1.0, 3.0, 2.0, 6.0]):  # person A at x = k
        maps[k, 0, k] = tag
        idx[0, 0, k] = torch.tensor([k * w + k, 1])
    for k, x, tag in [(0, 3, 4.0), (3, 0, 5.0)]:  # person B
        maps[k, 0, x] = tag
        idx[0, 1, k] = torch.tensor([k * w + x, 1])
    r = hae_loss(maps[None], idx, ((0, 1, 2), (3,)))
    torch.testing.assert_close(r.pull_keypoint_instance, torch.tensor([15 / 8]))
    torch.testing.assert_close(r.pull_keypoint_group, torch.tensor([2 / 8]))
    torch.testing.assert_close(r.pull_group_instance, torch.tensor([10.5 / 8]))
    torch.testing.assert_close(r.push, torch.tensor([0.5 * math.exp(-2.25)]))


SCHEMES = [(COCO17, s) for s in COCO17.groups] + [(CROWDPOSE14, s) for s in CROWDPOSE14.groups]


@pytest.mark.parametrize(("spec", "scheme"), SCHEMES, ids=[s for _, s in SCHEMES])
def test_builtin_schemes_equal_reference_loop(ae_batch, spec, scheme):
    groups = spec.get_groups(scheme)
    tags, idx = ae_batch(11, k=spec.num_keypoints)
    ours = torch.stack(list(hae_loss(tags, idx, groups)))
    torch.testing.assert_close(ours, reference_hae(tags, idx, groups, 1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("focal", ["none", "iqr", "gamma"])
@pytest.mark.parametrize("tag_dim", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_equals_reference_loop(ae_batch, seed, tag_dim, focal):
    groups = ((0, 1, 2), (2, 5), (3,), (4, 6))  # overlapping groups are allowed
    tags, idx = ae_batch(seed, k=7, tag_dim=tag_dim)
    tags[2, :, 0, 0] = 8.0  # some far-away tags so that IQR outliers exist
    ours = torch.stack(list(hae_loss(tags, idx, groups, tag_dim, focal=focal, gamma=1.5)))
    ref = reference_hae(tags, idx, groups, tag_dim, focal, 1.5)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)


def test_instance_pull_with_weights_100_is_ae_pull(ae_batch):
    tags, idx = ae_batch(3)
    r = hae_loss(tags, idx, ())
    a = ae_loss(tags, idx)
    torch.testing.assert_close(r.pull_keypoint_instance, a.pull)
    torch.testing.assert_close(r.push, a.push)


def test_iqr_weights_hit_the_true_outlier():
    # Tags of 6 joints; joint 1 (10.0) is the outlier. Sorted: 0, .1, .15, .2, .3, 10;
    # Q1 = sorted[floor(0.25*5)=1] = 0.1, Q3 = sorted[ceil(0.75*5)=4] = 0.3, IQR = 0.2,
    # fences [-0.2, 0.6]. The reference applies the weights of the sorted list in joint order,
    # i.e. x2 on joint 5 (last sorted position); the true outlier is joint 1.
    t = torch.tensor([0.0, 10.0, 0.1, 0.2, 0.3, 0.15])[:, None]
    w = iqr_weights(t, torch.ones(6, dtype=torch.bool))
    assert w.tolist() == [1.0, 2.0, 1.0, 1.0, 1.0, 1.0]
    buggy = torch.tensor(np_iqr_weights(np.sort(t.numpy(), axis=0)))
    assert buggy.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 2.0]  # what the reference would use


def test_iqr_weights_equal_numpy_percentiles_for_all_set_sizes():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(200, 9, 1, generator=g) ** 3  # heavy tails -> outliers
    t[:50] = torch.round(t[:50])  # ties
    mask = torch.rand(200, 9, generator=g) < torch.linspace(0.05, 1, 200)[:, None]
    w = iqr_weights(t, mask)
    for i in range(200):
        expected = np.ones(9)
        if mask[i].any():
            expected[mask[i].numpy()] = np_iqr_weights(t[i][mask[i]].numpy())
        np.testing.assert_array_equal(w[i].numpy(), expected)
    assert (w == 2).any()


def test_gamma_weights_are_marked_and_bounded():
    t = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    mask = torch.tensor([True, True, True, False])
    w = gamma_weights(t, torch.tensor([4 / 3]), mask, gamma=2.0)
    d = torch.tensor([4 / 3, 1 / 3, 5 / 3])
    torch.testing.assert_close(w[:3], 1 + (d / d.max()) ** 2)
    assert w[3] == 1.0
    assert gamma_weights(t, torch.tensor([1.0]), torch.tensor([False, True, False, False]), 2.0
                         ).tolist() == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("focal", ["none", "iqr", "gamma"])
def test_gradients_finite_and_weights_detached(ae_batch, focal):
    tags, idx = ae_batch(4, k=CROWDPOSE14.num_keypoints)
    tags[2] = 0.0  # identical tags everywhere in one image
    tags.requires_grad_(True)
    r = hae_loss(tags, idx, CROWDPOSE14.get_groups(), focal=focal)
    sum(x.sum() for x in r).backward()
    assert torch.isfinite(tags.grad).all()
    assert tags.grad[0].abs().sum() == 0  # no people


def test_group_matrix_validates():
    g = group_matrix(((0, 2), (1,)), 3)
    assert g.tolist() == [[True, False, True], [False, True, False]]
    with pytest.raises(ConfigError, match="outside"):
        group_matrix(((0, 3),), 3)
    with pytest.raises(ConfigError, match="twice"):
        group_matrix(((1, 1),), 3)


def _centers(values, valid):
    """(1, M, 1) reference tags and (1, M) validity, float32, tags requiring grad."""
    c = torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1).requires_grad_(True)
    return c, torch.tensor(valid).reshape(1, -1)


def test_exp_focal_push_hand_worked():
    """h = 0, 1, 3 (a fourth, invalid slot ignored): |d| = 1, 3, 2 per pair; mean over the 3 x 3
    matrix with its zero diagonal = 12 / 9; pair weights 1.2 (d = 1 < 4/3), 0.8 (d = 3, 2);
    push = 0.5 * 2 * (1.2 e^-1 + 0.8 e^-9 + 0.8 e^-4) / (3 * 2)."""
    c, valid = _centers([0.0, 1.0, 99.0, 3.0], [True, True, False, True])
    expected = (1.2 * math.exp(-1) + 0.8 * math.exp(-9) + 0.8 * math.exp(-4)) / 6
    got = focal_push(c, valid, "exp_focal")
    assert got.item() == pytest.approx(expected, rel=1e-6)
    got.sum().backward()
    assert torch.isfinite(c.grad).all() and c.grad[0, 2].item() == 0.0
    # a tied pair (h = 1, 1) has weight 1.0 and exp(0) = 1; mean |d| = (0 + 2 + 2) * 2 / 9
    c, valid = _centers([1.0, 1.0, 3.0], [True, True, True])
    expected = 0.5 * 2 * (1.0 + 0.8 * math.exp(-4) + 0.8 * math.exp(-4)) / 6
    assert focal_push(c, valid, "exp_focal").item() == pytest.approx(expected, rel=1e-6)


def test_exp_topk_push_hand_worked():
    """h = 0, 1, 3: the six ordered nonzero distances 1, 1, 3, 3, 2, 2; k = ceil(0.7 * 6) = 5
    keeps 3, 3, 2, 2, 1; push = 0.5 * (2 e^-9 + 2 e^-4 + e^-1) / 6. The gradient flows (the
    reference's copy into a new tensor cuts it)."""
    c, valid = _centers([0.0, 1.0, 3.0], [True, True, True])
    expected = 0.5 * (2 * math.exp(-9) + 2 * math.exp(-4) + math.exp(-1)) / 6
    got = focal_push(c, valid, "exp_topk")
    assert got.item() == pytest.approx(expected, rel=1e-6)
    got.sum().backward()
    assert c.grad.abs().sum() > 0
    # 4 people with one tied pair drop out: h = 0, 0, 1, 2 has 10 nonzero ordered distances,
    # 1 (x6) and 2 (x4); k = ceil(7.0) = 7 keeps 2 (x4) and 1 (x3)
    c, valid = _centers([0.0, 0.0, 1.0, 2.0], [True] * 4)
    expected = 0.5 * (4 * math.exp(-4) + 3 * math.exp(-1)) / 12
    assert focal_push(c, valid, "exp_topk").item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("kind", ["exp_focal", "exp_topk"])
def test_push_variants_zero_for_one_person_and_exp_max_unchanged(kind):
    c, valid = _centers([0.5, 7.0], [True, False])
    assert focal_push(c, valid, kind).item() == 0.0
    c, valid = _centers([0.0, 0.4, 2.0], [True, True, True])
    for plain in ("exp", "max"):
        assert torch.equal(focal_push(c, valid, plain), push_loss(c, valid, plain))
    with pytest.raises(ValueError, match="push type"):
        focal_push(c, valid, "exp_normal")


def test_push_variants_reach_pose_loss_and_config(ae_batch):
    """loss.ae_type exp_focal / exp_topk and loss.gamma go from the recipe into PoseLoss."""
    from bupose.config import config_from_dict
    from bupose.engine.tasks import AETask
    from bupose.models import create_model

    cfg = config_from_dict({"loss": {"tag_loss": "hae", "ae_type": "exp_topk", "focal": "gamma",
                                     "gamma": 0.5}})
    model = create_model("higherhrnet_tiny")
    loss = AETask().build_loss(cfg, COCO17, model)
    assert (loss.ae_type, loss.focal, loss.gamma) == ("exp_topk", "gamma", 0.5)
    tags, idx = ae_batch(0, k=17)
    ours = hae_loss(tags, idx, COCO17.get_groups(None), 1, "exp_topk", "gamma", 0.5)
    assert torch.isfinite(ours.push).all() and ours.push[2] > 0
    with pytest.raises(ConfigError, match="ae_type"):
        config_from_dict({"loss": {"ae_type": "exp_normal"}})
