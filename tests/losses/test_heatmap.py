import pytest
import torch

from bupose.losses.heatmap import heatmap_loss


def _maps(seed=0, b=2, k=3, h=5, w=6):
    g = torch.Generator().manual_seed(seed)
    pred, gt = torch.rand(b, k, h, w, generator=g), torch.rand(b, k, h, w, generator=g)
    mask = (torch.rand(b, h, w, generator=g) > 0.4).float()
    return pred, gt, mask


def test_equals_masked_mean_per_image():
    pred, gt, mask = _maps()
    loss = heatmap_loss(pred, gt, mask)
    for b in range(2):  # mean over K*h*w, masked pixels still in the denominator
        expected = ((pred[b] - gt[b]) ** 2 * mask[b]).sum() / pred[b].numel()
        torch.testing.assert_close(loss[b], expected)


def test_masked_pixels_do_not_change_the_loss():
    pred, gt, mask = _maps(1)
    changed = pred + 100.0 * (mask == 0)[:, None].float()  # only ignored pixels change
    assert not torch.equal(changed, pred)
    torch.testing.assert_close(heatmap_loss(changed, gt, mask), heatmap_loss(pred, gt, mask))
    supervised = pred.clone()
    supervised[0, 1][mask[0] > 0] += 1.0
    assert heatmap_loss(supervised, gt, mask)[0] > heatmap_loss(pred, gt, mask)[0]


def test_all_masked_gives_zero_and_finite_zero_gradient():
    pred, gt, mask = _maps(2)
    pred.requires_grad_(True)
    loss = heatmap_loss(pred, gt, torch.zeros_like(mask))
    loss.sum().backward()
    assert loss.tolist() == [0.0, 0.0]
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() == 0


def test_supervise_empty_false_skips_empty_channels():
    pred, gt, mask = _maps(3)
    gt[:, 1] = 0
    loss = heatmap_loss(pred, gt, mask, supervise_empty=False)
    keep = gt.clone()
    pred2 = pred.clone()
    pred2[:, 1] = 0  # channel 1 unsupervised: predicting 0 there equals ignoring it
    torch.testing.assert_close(loss, heatmap_loss(pred2, keep, mask))
    assert (heatmap_loss(pred, gt, mask) > loss).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_give_float32(dtype):
    pred, gt, mask = _maps(4)
    loss = heatmap_loss(pred.to(dtype), gt.to(dtype), mask.to(dtype))
    assert loss.dtype == torch.float32


def test_shape_mismatch_raises():
    pred, gt, mask = _maps()
    with pytest.raises(ValueError, match="target"):
        heatmap_loss(pred, gt[:, :2], mask)
    with pytest.raises(ValueError, match="mask"):
        heatmap_loss(pred, gt, mask[:, :3])
