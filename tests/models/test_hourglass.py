"""SimplePose V2 hourglass: official key names and parameter counts, the tiny fixture forward,
output shapes, and the small CPU model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bupose.models import create_model, model_family
from bupose.models.hourglass import SimplePoseNet, build_simplepose
from tests.conftest import SHARED, require

OG = SHARED / "fixtures" / "official_offsetguided"
TINY_KWARGS = {"dims": [8, 8, 12, 12, 12, 16], "cnv_dim": 8, "stem_channels": 8}


def _facts() -> dict:
    return json.loads(require(OG / "model" / "model_facts.json").read_text())


def _meta_model(**kwargs: object) -> SimplePoseNet:
    with torch.device("meta"):
        return build_simplepose(**kwargs)


def test_hg104_keys_equal_official_listing() -> None:
    listing = json.loads(require(OG / "model" / "state_dict_keys.json").read_text())
    train = [[name, shape] for name, shape, _ in listing["train"]]
    ours = [[k, list(v.shape)] for k, v in _meta_model(with_scale=True).state_dict().items()]
    assert ours == train
    minus = set(listing["eval_is_train_minus"])
    evaluation = [entry for entry in train if entry[0] not in minus]
    assert [[k, list(v.shape)] for k, v in _meta_model().state_dict().items()] == evaluation


def test_hg104_parameter_counts_equal_official() -> None:
    facts = _facts()
    model = _meta_model()
    assert sum(p.numel() for p in model.parameters()) == facts["eval"]["params_total"]
    assert (sum(p.numel() for p in model.basenet.parameters())
            == facts["eval"]["params_basenet"])
    with_scale = _meta_model(with_scale=True)
    assert sum(p.numel() for p in with_scale.parameters()) == facts["train"]["params_total"]
    bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert bns == facts["eval"]["batchnorm2d_layers"]


def _tiny_from_checkpoint() -> SimplePoseNet:
    ckpt = torch.load(require(OG / "tiny" / "tiny_checkpoint.pth"), map_location="cpu",
                      weights_only=True)
    model = SimplePoseNet(**TINY_KWARGS, with_scale=True)
    model.load_state_dict(ckpt["model_state_dict"], strict=True)
    return model.eval()


def test_tiny_param_count_equals_fixture() -> None:
    cfg = json.loads(require(OG / "tiny" / "tiny_config.json").read_text())
    assert sum(p.numel() for p in SimplePoseNet(**TINY_KWARGS, with_scale=True).parameters()) \
        == cfg["params_total"]
    assert sum(p.numel() for p in SimplePoseNet(**TINY_KWARGS).parameters()) \
        == cfg["params_eval_model"]


def test_tiny_forward_equals_official() -> None:
    ref = np.load(require(OG / "tiny" / "tiny_forward.npz"))
    model = _tiny_from_checkpoint()
    x = torch.from_numpy(ref["input"])
    with torch.no_grad():
        features = model.basenet(x)
        heatmaps, offsets, scales = model(x)
    assert heatmaps.shape == (1, 2, 17, 32, 64) and offsets.shape == (1, 2, 38, 32, 64)
    for s in range(2):
        for name, ours in (("feature", features[s]), ("hmp", heatmaps[:, s]),
                           ("off", offsets[:, s]), ("scale", scales[:, s])):
            want = ref[f"{name}_s{s}"]
            np.testing.assert_allclose(ours.numpy(), want, rtol=1e-5,
                                       atol=1e-5 * float(np.abs(want).max()),
                                       err_msg=f"{name}_s{s}")


def test_eval_build_gives_same_maps_without_scale_head() -> None:
    ref = np.load(require(OG / "tiny" / "tiny_forward.npz"))
    full = _tiny_from_checkpoint()
    state = {k: v for k, v in full.state_dict().items() if "scale_convs" not in k}
    model = SimplePoseNet(**TINY_KWARGS).eval()
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        outputs = model(torch.from_numpy(ref["input"]))
    assert len(outputs) == 2
    np.testing.assert_allclose(outputs[0][:, 1].numpy(), ref["hmp_s1"], atol=1e-6)


@pytest.mark.parametrize("name", ["simplepose_hg_small"])
def test_registered_small_model_trains(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, with_scale=True).train()
    assert model_family(model) == "offsets" and model.meta.input_size == 256
    assert 1_000_000 < sum(p.numel() for p in model.parameters()) < 10_000_000
    heatmaps, offsets, scales = model(torch.randn(2, 3, 128, 256))
    assert heatmaps.shape == (2, 2, 17, 32, 64) and offsets.shape == (2, 2, 38, 32, 64)
    assert scales.shape == heatmaps.shape
    (heatmaps.square().mean() + offsets.abs().mean() + scales.abs().mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_constructor_options_and_errors() -> None:
    model = SimplePoseNet(num_keypoints=5, num_limbs=4, num_stacks=1, order=2, dims=[4, 6, 8],
                          modules=[1, 1, 1], cnv_dim=6, stem_channels=4)
    assert model.input_multiple == 16
    heatmaps, offsets = model(torch.zeros(1, 3, 32, 48))
    assert heatmaps.shape == (1, 1, 5, 8, 12) and offsets.shape == (1, 1, 8, 8, 12)
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.zeros(1, 3, 40, 48))
    with pytest.raises(ValueError, match="needs 3 dims"):
        SimplePoseNet(order=2, dims=[4, 6], modules=[1, 1, 1])
    with pytest.raises(TypeError):
        build_simplepose(width=3)


def test_official_init() -> None:
    model = build_simplepose(**TINY_KWARGS)
    conv = model.headnets[0].hp_convs[0]
    assert torch.equal(conv.bias, torch.zeros(17))
    assert abs(model.basenet.kps[0].up1[0].conv1.weight.std().item() - 0.001) < 3e-4
    assert torch.equal(model.basenet.pre[0].bn.weight, torch.ones(8))
