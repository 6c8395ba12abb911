"""The confidence-aware loss against shared/fixtures/official_cal/loss and loss128: argmax with
quirk 4 (exact), the GMM (mean/covariance 1e-5), the normalised 7x7 mask (1e-6) and the four
loss variants (loss and offset_loss to 1e-6 relative)."""

import json

import numpy as np
import pytest
import torch

from bupose.errors import ConfigError
from bupose.losses.cal_loss import (
    CALLoss,
    argmax_coords,
    confidence_mask,
    density_grid,
    fit_gaussian,
    paste_density,
)
from tests.conftest import SHARED, require

CAL = SHARED / "fixtures" / "official_cal"
CASES = [("loss", "b8"), ("loss", "b12"), ("loss128", "b6")]
VARIANTS = {"train_gmm": ("gmm", 0.7), "dataset_mask_g": ("gaussian", 0.7),
            "mask01": ("01", 0.7), "train_gmm_ow1": ("gmm", 1.0)}


def load(folder: str, case: str) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(require(CAL / folder / f"loss_{case}.npz")) as f:
        arrays = {k: f[k] for k in f.files}
    facts = json.loads(require(CAL / folder / "loss.json").read_text())["cases"][case]
    return arrays, facts


def batch_of(d: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {"heatmaps": torch.from_numpy(d["target"]),
            "offsets": torch.from_numpy(d["target_offset"]),
            "mask_01": torch.from_numpy(d["mask_01"]), "mask_g": torch.from_numpy(d["mask_g"]),
            "target_weight": torch.from_numpy(d["target_weight"])}


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_argmax_and_gmm_equal_the_reference(folder, case):
    d, facts = load(folder, case)
    pred, _ = argmax_coords(d["output"])
    gt, _ = argmax_coords(d["target"])
    np.testing.assert_array_equal(pred, d["argmax_pred"])
    np.testing.assert_array_equal(gt, d["argmax_gt"])
    for b, k in facts.get("negative_maps_bk", []):  # quirk 4: max <= 0 -> (0, 0)
        assert d["output"][b, k].max() <= 0 and pred[b, k].tolist() == [0.0, 0.0]
    mask, fit = confidence_mask(torch.from_numpy(d["output"]), torch.from_numpy(d["target"]),
                                torch.from_numpy(d["target_weight"]))
    assert fit.n == facts["gmm"]["n_errors"] == len(d["gmm_errors"])
    np.testing.assert_allclose(fit.mean, d["gmm_mean"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(fit.covariance, d["gmm_covariance"], atol=1e-5, rtol=0)
    dens = density_grid(fit)
    np.testing.assert_allclose(dens, d["gmm_density_7x7"], rtol=1e-5, atol=0)
    assert mask.dtype == torch.float32
    np.testing.assert_allclose(mask.numpy(), d["gmm_mask"], atol=1e-6, rtol=0)


@pytest.mark.parametrize(("folder", "case"), CASES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_loss_variants_equal_the_reference(folder, case, variant):
    d, facts = load(folder, case)
    mask_kind, weight = VARIANTS[variant]
    expected = facts[variant]
    assert expected["offset_weight"] == weight
    outputs = (torch.from_numpy(d["output"]), torch.from_numpy(d["output_offset"]))
    terms = CALLoss(weight, mask_kind)(outputs, batch_of(d))
    assert set(terms) == {"heatmap", "offset"}
    loss = float(terms["heatmap"] + terms["offset"])
    assert loss == pytest.approx(expected["loss"], rel=1e-6, abs=0)
    assert float(terms["offset"]) / weight == pytest.approx(expected["offset_loss"], rel=1e-6)


def test_closed_form_is_the_biased_fit():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(50, 2)) @ np.array([[1.0, 0.3], [0.0, 2.0]])
    fit = fit_gaussian(e)
    np.testing.assert_allclose(fit.covariance, np.cov(e.T, bias=True) + 1e-6 * np.eye(2))
    dens = density_grid(fit, 41)  # finer grid: sums to ~1 over a wide support
    assert dens.shape == (41, 41) and abs(dens.sum() - 1) < 1e-3
    with pytest.raises(ValueError):
        fit_gaussian(np.zeros((0, 2)))


def test_paste_clips_at_borders_and_skips_weight_zero():
    dens = np.arange(49, dtype=np.float64).reshape(7, 7)
    cells = np.array([[[0, 0], [11, 15], [5, 5]]], np.float32)
    out = paste_density(dens, cells, np.array([[1, 1, 0]]), (16, 12))
    np.testing.assert_array_equal(out[0, 0, :4, :4], dens[3:, 3:])
    np.testing.assert_array_equal(out[0, 1, 12:, 8:], dens[:4, :4])
    assert not out[0, 2].any()


def test_no_visible_joint_gives_zero_mask_and_gradients_flow():
    hm = torch.rand(2, 17, 16, 12, requires_grad=True)
    off = torch.rand(2, 34, 16, 12, requires_grad=True)
    batch = {"heatmaps": torch.rand(2, 17, 16, 12), "offsets": torch.rand(2, 34, 16, 12),
             "target_weight": torch.zeros(2, 17, 1)}
    loss = CALLoss()
    terms = loss((hm, off), batch)
    assert loss.last_fit is None and terms["offset"].item() == 0.0
    batch["target_weight"][0, 3] = 1.0
    batch["heatmaps"][0, 3] = hm[0, 3].detach() * 0.5  # error 0: the mask peaks on that cell
    terms = loss((hm, off), batch)
    sum(terms.values()).backward()
    assert loss.last_fit.n == 1 and hm.grad.abs().sum() > 0 and off.grad[0, 6:8].abs().sum() > 0
    with pytest.raises(ConfigError, match="offset_mask"):
        CALLoss(offset_mask="nope")
    with pytest.raises(ConfigError, match="do not match"):
        loss((hm[:, :, :8], off), batch)
