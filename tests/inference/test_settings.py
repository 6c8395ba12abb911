"""TestSettings: one structure for the test-time settings, resolved flag > checkpoint > default,
and the same settings reaching Predictor, `bupose infer`, `bupose decode` and validation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bupose.cli import build_parser, main
from bupose.config import config_from_dict
from bupose.decoders import DECODERS, GROUPING_DECODERS
from bupose.decoders.params import GroupingParams
from bupose.errors import ConfigError
from bupose.inference.predictor import Predictor
from bupose.inference.settings import TestSettings, settings_for_model
from bupose.models import create_model

# non-default values of every kind (decoder, thresholds, grouping, flip, scales, input size)
RECIPE_EVAL = {"decoder": "hae", "detection_threshold": 0.25, "tag_threshold": 0.7,
               "max_people": 12, "nms_kernel": 3, "flip": False, "scales": [1.0, 0.5],
               "refine": False}


def _expected() -> TestSettings:
    return TestSettings(
        decoder="hae", input_size=64, flip=False, scales=(1.0, 0.5),
        grouping=GroupingParams(detection_threshold=0.25, tag_threshold=0.7, max_people=12,
                                top_k=12, nms_kernel=3, refine=False),
    )


def test_replace_routes_grouping_keys_and_max_people_sets_top_k():
    s = TestSettings().replace(max_people=50, flip=False, tag_threshold=None)
    assert (s.grouping.max_people, s.grouping.top_k, s.flip) == (50, 50, False)
    assert s.grouping.tag_threshold == 1.0  # None = not given
    s = TestSettings().replace(max_people=50, top_k=80)
    assert (s.grouping.max_people, s.grouping.top_k) == (50, 80)
    with pytest.raises(ConfigError, match="unknown test setting"):
        TestSettings().replace(treshold=1)
    with pytest.raises(ConfigError, match="nms_kernel"):
        TestSettings().replace(nms_kernel=4)
    with pytest.raises(ConfigError, match="scales"):
        TestSettings().replace(scales=[])


def test_meta_round_trip_and_official_keys():
    s = _expected()
    meta = s.to_meta()
    assert meta["flip_test"] is False and meta["max_num_people"] == 12  # official names
    assert meta["scale_factor"] == [1.0, 0.5] and "input_size" not in meta
    assert TestSettings.from_meta(json.loads(json.dumps(meta)), 64) == s
    # an official YAML's TEST section (upper case, unused keys, MAX_NUM_PEOPLE = top-k)
    official = {"FLIP_TEST": True, "SCALE_FACTOR": [1], "DETECTION_THRESHOLD": 0.2,
                "NMS_KERNEL": 3, "NMS_PADDING": 1, "PROJECT2IMAGE": False,
                "WITH_HEATMAPS": (True, True), "WITH_AE": (True, False), "max_num_people": 20}
    o = TestSettings.from_meta(official, 640)
    assert (o.input_size, o.flip, o.scales, o.project2image) == (640, True, (1.0,), False)
    assert (o.use_heatmaps, o.use_tags) == ((True, True), (True, False))
    assert (o.grouping.detection_threshold, o.grouping.nms_kernel) == (0.2, 3)
    assert (o.grouping.max_people, o.grouping.top_k, o.decoder) == (20, 20, "ae")


def test_predictor_takes_spec_and_input_size_from_the_model():
    model = create_model("higherhrnet_tiny")
    model.meta = dataclasses.replace(model.meta, input_size=640)  # e.g. a W48-640 model
    p = Predictor(model)
    assert p.input_size == 640 and p.spec is model.meta.spec and p.decoder == "ae"
    assert Predictor(model, input_size=320).input_size == 320  # argument > model


@pytest.fixture(scope="module")
def hae_checkpoint(tmp_path_factory):
    """A random tiny model saved the way `bupose train` saves it, with recipe eval settings."""
    from bupose.engine.evaluate import attach_test_settings, save_model_checkpoint

    cfg = config_from_dict({"model": {"name": "higherhrnet_tiny"}, "data": {"input_size": 64},
                            "eval": RECIPE_EVAL})
    model = create_model("higherhrnet_tiny")
    attach_test_settings(model, cfg)
    path = tmp_path_factory.mktemp("ckpt") / "hae.pth"
    save_model_checkpoint(path, model, cfg, model.meta.spec, {"AP": 0.0})
    return path, cfg


def test_checkpoint_settings_reach_predictor_infer_and_validation(hae_checkpoint):
    from bupose.cli.infer_cmd import build_predictor
    from bupose.engine.tasks import AETask
    from bupose.models.checkpoint import load_checkpoint

    path, cfg = hae_checkpoint
    model = load_checkpoint(path)
    assert settings_for_model(model) == _expected()
    assert Predictor(model).settings == _expected()
    args = build_parser().parse_args(["infer", "x.jpg", "--checkpoint", str(path)])
    assert build_predictor(args, model).settings == _expected()
    validation = AETask().build_predictor(cfg, model.meta.spec, model)
    assert validation.settings == _expected()
    # a flag wins over the checkpoint, the rest stays the checkpoint's
    args = build_parser().parse_args(["infer", "x.jpg", "--checkpoint", str(path), "--decoder",
                                      "ae", "--tag-threshold", "2", "--max-people", "40"])
    flagged = build_predictor(args, model).settings
    assert flagged == _expected().replace(decoder="ae", tag_threshold=2.0, max_people=40)


def test_infer_runs_the_checkpoint_decoder_and_decode_reuses_its_settings(
    hae_checkpoint, tmp_path, monkeypatch
):
    import cv2

    path, _ = hae_checkpoint
    image = tmp_path / "7.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 80, 3), np.uint8))
    seen: list[tuple[str, GroupingParams]] = []
    for name in ("ae", "hae"):
        real = DECODERS.get(name)

        def spy(heat, tags, params, order, _real=real, _name=name):
            seen.append((_name, params))
            return _real(heat, tags, params, order)

        monkeypatch.setitem(GROUPING_DECODERS, name, spy)
    out = tmp_path / "r.json"
    assert main(["infer", str(image), "--checkpoint", str(path), "--json", str(out),
                 "--save-maps", str(tmp_path / "maps")]) == 0
    assert seen == [("hae", _expected().grouping)]
    seen.clear()
    again = tmp_path / "d.json"
    assert main(["decode", str(tmp_path / "maps" / "7.npz"), "--json", str(again)]) == 0
    assert seen == [("hae", _expected().grouping)]
    assert json.loads(again.read_text()) == json.loads(out.read_text())
    seen.clear()
    assert main(["decode", str(tmp_path / "maps" / "7.npz"), "--decoder", "ae",
                 "--nms-kernel", "5"]) == 0
    assert seen == [("ae", dataclasses.replace(_expected().grouping, nms_kernel=5))]


def test_min_score_filters_written_people():
    from bupose.cli.infer_cmd import keep_confident
    from bupose.inference.poses import Poses

    poses = Poses(np.ones((3, 17, 3), np.float32), np.array([0.25, 0.5, 0.75], np.float32),
                  tags=np.zeros((3, 17, 2), np.float32))
    kept = keep_confident(poses, 0.5)
    assert kept.scores.tolist() == [0.5, 0.75] and kept.tags.shape == (2, 17, 2)
    assert keep_confident(poses, 0.0) is poses
    assert len(keep_confident(poses, 0.8)) == 0
