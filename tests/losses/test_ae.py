import pytest
import torch

from bupose.losses.ae import ae_loss, gather_tags, push_loss


def reference_ae(tags, tag_indices, tag_dim, loss_type):
    """Per-image, per-person loop following the official HigherHRNet AELoss.singleTagLoss, in
    float64, with the tag read as tags[k*D:(k+1)*D, y, x] and L2 distances over D."""
    tags = tags.double()
    _, _, h, w = tags.shape
    pulls, pushes = [], []
    for b in range(tags.shape[0]):
        means, pull = [], 0.0
        for person in tag_indices[b].tolist():
            tmp = []
            for index, valid in person:
                if valid > 0:
                    k, p = divmod(index, h * w)
                    y, x = divmod(p, w)
                    tmp.append(tags[b, k * tag_dim:(k + 1) * tag_dim, y, x])
            if not tmp:
                continue
            tmp = torch.stack(tmp)
            means.append(tmp.mean(dim=0))
            pull = pull + ((tmp - means[-1]) ** 2).sum(dim=1).mean()
        n = len(means)
        if n == 0:
            pulls.append(0.0)
            pushes.append(0.0)
            continue
        pulls.append(float(pull) / n)
        if n == 1:
            pushes.append(0.0)
            continue
        hm = torch.stack(means)
        dist = (hm[:, None] - hm[None]).norm(dim=-1)
        if loss_type == "exp":
            push = torch.exp(-dist**2).sum() - n
        else:
            push = torch.clamp(1 - dist, min=0).sum() - n
        pushes.append(float(push) / ((n - 1) * n) * 0.5)
    return torch.tensor(pulls), torch.tensor(pushes)


@pytest.mark.parametrize("loss_type", ["exp", "max"])
@pytest.mark.parametrize("tag_dim", [1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vectorised_ae_equals_reference_loop(ae_batch, seed, tag_dim, loss_type):
    # Scale 0.5 keeps many pairs within distance 1 so "max" push is not trivially 0.
    tags, idx = ae_batch(seed, tag_dim=tag_dim, scale=0.5 if loss_type == "max" else 1.0)
    ours = ae_loss(tags, idx, tag_dim, loss_type)
    pull, push = reference_ae(tags, idx, tag_dim, loss_type)
    torch.testing.assert_close(ours.pull, pull.float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours.push, push.float(), rtol=1e-6, atol=1e-6)
    assert ours.pull[0] == 0 and ours.push[0] == 0  # N = 0
    assert ours.push[1] == 0 and ours.pull[1] > 0  # N = 1
    assert ours.push[2] > 0


def test_gather_reads_joint_major_channels():
    k, d, h, w = 3, 2, 4, 5
    tags = torch.arange(k * d * h * w, dtype=torch.float32).reshape(1, k * d, h, w)
    idx = torch.tensor([[[[0 * h * w + 1 * w + 2, 1], [1 * h * w + 3 * w + 4, 1], [7, 0]]]])
    t, vis = gather_tags(tags, idx, d)
    assert vis.tolist() == [[[True, True, False]]]
    # joint 0 at (y=1, x=2): channels 0 and 1; joint 1 at (y=3, x=4): channels 2 and 3
    assert t[0, 0, 0].tolist() == [tags[0, 0, 1, 2].item(), tags[0, 1, 1, 2].item()]
    assert t[0, 0, 1].tolist() == [tags[0, 2, 3, 4].item(), tags[0, 3, 3, 4].item()]


def test_hand_computed_two_people():
    # Person A: tags 1 and 3 -> h_A = 2, pull_A = mean(1, 1) = 1; person B: tag 4 -> h_B = 4,
    # pull_B = 0. pull = (1 + 0) / 2 = 0.5; push = 0.5 * 2 exp(-(2-4)^2) / (2 * 1) = 0.5 e^-4.
    # K=2, h=1, w=2: joint 0's map is [1, 4], joint 1's map is [0, 3].
    tags = torch.tensor([[1.0, 4.0], [0.0, 3.0]]).reshape(1, 2, 1, 2)
    # A: joint 0 at x=0 (index 0), joint 1 at x=1 (index 1*2+1); B: joint 0 at x=1 (index 1).
    idx = torch.tensor([[[[0, 1], [3, 1]], [[1, 1], [0, 0]]]])
    r = ae_loss(tags, idx)
    torch.testing.assert_close(r.pull, torch.tensor([0.5]))
    torch.testing.assert_close(r.push, 0.5 * torch.exp(torch.tensor([-4.0])))


@pytest.mark.parametrize("loss_type", ["exp", "max"])
def test_gradients_finite_for_zero_one_many_and_identical_tags(ae_batch, loss_type):
    tags, idx = ae_batch(5, tag_dim=2)
    tags[2] = 0.0  # identical tags: zero distances (the "max" norm is not differentiable at 0)
    tags.requires_grad_(True)
    r = ae_loss(tags, idx, 2, loss_type)
    (r.pull.sum() + r.push.sum()).backward()
    assert torch.isfinite(tags.grad).all()
    assert tags.grad[0].abs().sum() == 0  # the image without people gets no gradient


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_tags_give_float32_without_overflow(ae_batch, dtype):
    tags, idx = ae_batch(7, scale=300.0)  # squared differences ~1e5 overflow float16
    r = ae_loss(tags.to(dtype), idx)
    ref = ae_loss(tags.to(dtype).float(), idx)
    assert r.pull.dtype == torch.float32 and r.push.dtype == torch.float32
    assert torch.isfinite(r.pull).all() and r.pull.max() > 65504
    torch.testing.assert_close(r.pull, ref.pull)


def test_push_normalisation_counts_only_valid_people():
    centers = torch.tensor([[[0.0], [0.5], [9.0], [1.0]]])
    valid = torch.tensor([[True, True, False, True]])
    d = torch.tensor([0.5, 1.0, 0.5])  # pairs (0,1), (0,3), (1,3)
    expected = 0.5 * 2 * torch.exp(-d**2).sum() / (3 * 2)
    torch.testing.assert_close(push_loss(centers, valid, "exp"), expected[None])
    expected_max = 0.5 * 2 * torch.clamp(1 - d, min=0).sum() / 6
    torch.testing.assert_close(push_loss(centers, valid, "max"), expected_max[None])
