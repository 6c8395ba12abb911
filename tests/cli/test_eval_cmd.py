"""``bupose eval``: prints the standard table, writes --json, and reports bad files without a
traceback (exit status 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import bupose.cli
from tests.conftest import ROOT, SHARED_DATA, require

EXAMPLES = SHARED_DATA / "eval_examples"
CROWDPOSE_GT = EXAMPLES / "example_crowdpose_val.json"
CROWDPOSE_PRED = EXAMPLES / "example_crowdpose_preds.json"
MPII_MAT = SHARED_DATA / "mpii_annotations" / "detections_our_format.mat"


def run_bupose(*argv: str) -> subprocess.CompletedProcess:
    """``python -m bupose ARGV`` in a fresh interpreter; a CLI parser that cannot be built (a
    subcommand module failing to import) fails the test."""
    probe = subprocess.run([sys.executable, "-c", "import bupose.cli as c; c.build_parser()"],
                           cwd=ROOT, capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"the bupose parser cannot be built: {probe.stderr.strip()[-200:]}")
    return subprocess.run([sys.executable, "-m", "bupose", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_prints_table_and_writes_json(tmp_path):
    require(CROWDPOSE_GT)
    out = tmp_path / "stats.json"
    proc = run_bupose("eval", "--results", str(CROWDPOSE_PRED), "--annotations",
                      str(CROWDPOSE_GT), "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "CrowdPose keypoint AP" in proc.stdout
    assert "AP_easy" in proc.stdout
    saved = json.loads(out.read_text())
    assert saved["kind"] == "crowdpose" and saved["spec"] == "crowdpose14"
    assert list(saved["stats"])[-1] == "AP_hard"
    assert f"{saved['stats']['AP']:.3f}" in proc.stdout


def test_cli_malformed_results_exit_2_without_traceback(tmp_path):
    require(CROWDPOSE_GT)
    bad = tmp_path / "bad_results.json"
    bad.write_text('[{"image_id": 1, "category_id": 1, ')
    proc = run_bupose("eval", "--results", str(bad), "--annotations", str(CROWDPOSE_GT))
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "malformed results file" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture
def eval_only(monkeypatch):
    """The CLI with only the eval subcommand, so these tests do not depend on the others."""
    monkeypatch.setattr(bupose.cli, "COMMANDS", ("eval",))
    return bupose.cli.main


def test_main_in_process_table_and_json(eval_only, tmp_path, capsys):
    require(CROWDPOSE_GT)
    out = tmp_path / "stats.json"
    code = eval_only(["eval", "--results", str(CROWDPOSE_PRED), "--annotations",
                      str(CROWDPOSE_GT), "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    names, values = printed.splitlines()[2:4]
    assert names.split() == ["AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium",
                             "AP_hard"]
    stats = json.loads(out.read_text())["stats"]
    assert values.split() == [f"{v:.3f}" for v in stats.values()]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"image_id": 123, "category_id": 1, "keypoints": [0.0] * 42, "score": 1.0},
         "result entry 0: image_id 123 is not an image"),
        ({"image_id": 104173, "category_id": 1, "keypoints": [0.0] * 51, "score": 1.0},
         "result entry 0: keypoints has 51 values; expected 3\\*K = 42"),
    ],
)
def test_main_in_process_bad_entries(eval_only, tmp_path, capsys, entry, message):
    require(CROWDPOSE_GT)
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps([entry]))
    assert eval_only(["eval", "--results", str(bad), "--annotations", str(CROWDPOSE_GT)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bupose eval: error: ") and str(bad) in err
    assert __import__("re").search(message, err)


def test_main_in_process_empty_results_warn(eval_only, tmp_path, capsys):
    require(CROWDPOSE_GT)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert eval_only(["eval", "--results", str(empty), "--annotations", str(CROWDPOSE_GT)]) == 0
    captured = capsys.readouterr()
    assert "warning: " in captured.err and "no result entries" in captured.err
    assert "0.000" in captured.out


def test_main_in_process_mpii(eval_only, tmp_path, capsys):
    from bupose.evaluation.pckh import load_mpii_ground_truth

    gt = load_mpii_ground_truth(require(MPII_MAT))
    pred = tmp_path / "pred.npy"
    np.save(pred, gt.positions - 1.0)
    out = tmp_path / "pckh.json"
    assert eval_only(["eval", "--results", str(pred), "--annotations", str(MPII_MAT),
                      "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "MPII PCKh (2958 persons" in printed
    saved = json.loads(out.read_text())
    assert saved["kind"] == "mpii" and saved["stats"]["Mean"] == pytest.approx(100.0)


@pytest.fixture(scope="module")
def hae_checkpoint(tmp_path_factory):
    """A random tiny model saved as `bupose train` saves it, tested with HAE at 128 px."""
    from bupose.config import config_from_dict
    from bupose.engine.evaluate import attach_test_settings, save_model_checkpoint
    from bupose.models import create_model

    cfg = config_from_dict({"data": {"input_size": 128},
                            "eval": {"decoder": "hae", "detection_threshold": 0.0,
                                     "tag_threshold": 0.8, "max_people": 5, "refine": False}})
    model = create_model("higherhrnet_tiny")
    attach_test_settings(model, cfg)
    path = tmp_path_factory.mktemp("ckpt") / "hae.pth"
    save_model_checkpoint(path, model, cfg, model.meta.spec, {})
    return path


def test_eval_checkpoint_equals_infer_then_eval(hae_checkpoint, tmp_path, capsys):
    """`eval --checkpoint` predicts exactly what `infer` writes (the checkpoint's settings) and
    scores it as `eval --results` does."""
    gt = require(SHARED_DATA / "samples" / "coco" / "test_coco.json")
    images = gt.parent
    ours, stats = tmp_path / "ours.json", tmp_path / "stats.json"
    assert bupose.cli.main(["eval", "--checkpoint", str(hae_checkpoint), "--annotations",
                            str(gt), "--images", str(images), "--save-results", str(ours),
                            "--json", str(stats), "--max-images", "2"]) == 0
    inferred = tmp_path / "infer.json"
    names = [str(images / f"{i:012d}.jpg") for i in (785, 40083)]  # first two
    assert bupose.cli.main(["infer", *names, "--checkpoint", str(hae_checkpoint),
                            "--json", str(inferred)]) == 0
    expected = [{k: v for k, v in e.items() if k != "file_name"}
                for e in json.loads(inferred.read_text())]
    got = json.loads(ours.read_text())
    assert len(got) > 0
    key = lambda e: (e["image_id"], -e["score"])  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)
    scored = tmp_path / "scored.json"
    subset = json.loads(gt.read_text())
    subset["images"] = subset["images"][:2]
    keep = {im["id"] for im in subset["images"]}
    subset["annotations"] = [a for a in subset["annotations"] if a["image_id"] in keep]
    (tmp_path / "gt2.json").write_text(json.dumps(subset))
    assert bupose.cli.main(["eval", "--results", str(ours), "--annotations",
                            str(tmp_path / "gt2.json"), "--json", str(scored)]) == 0
    assert json.loads(stats.read_text())["stats"] == json.loads(scored.read_text())["stats"]
    capsys.readouterr()
    assert bupose.cli.main(["eval", "--annotations", str(gt)]) == 2
    assert "either --results" in capsys.readouterr().err
