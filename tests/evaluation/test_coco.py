"""COCO / CrowdPose keypoint AP: perfect predictions score 1, and the statistics equal the
reference tools (pycocotools for COCO, xtcocotools 'keypoints_crowd' for CrowdPose) on real
prediction files and on randomly perturbed predictions."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings

import numpy as np
import pytest

from bupose.errors import ConfigError, DataError
from bupose.evaluation import (
    COCO_STATS,
    CROWDPOSE_STATS,
    EvaluationWarning,
    evaluate_keypoints,
    format_keypoint_stats,
    score_keypoints,
)
from bupose.structures.spec import AIC14, COCO17, CROWDPOSE14
from tests.conftest import SHARED_DATA, require

SAMPLES = SHARED_DATA / "samples"
CROWDPOSE_VAL = SHARED_DATA / "crowdpose_val_annotations" / "crowdpose_val.json"
COCO_TINY_VAL = SHARED_DATA / "coco_tiny" / "annotations" / "person_keypoints_val2017.json"
EXAMPLES = SHARED_DATA / "eval_examples"


def load(path):
    with open(require(path)) as f:
        return json.load(f)


def gt_as_results(gt):
    """Ground truth written as results: GT keypoints, score 1, persons with keypoints only."""
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"],
         "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"] if a["num_keypoints"] > 0
    ]


def subset(gt, num_images):
    """The first ``num_images`` images of a ground truth with their annotations."""
    images = gt["images"][:num_images]
    ids = {im["id"] for im in images}
    anns = [a for a in gt["annotations"] if a["image_id"] in ids]
    return {**gt, "images": images, "annotations": anns}


def perturbed_results(gt, seed, num_keypoints):
    """Predictions from the ground truth: jittered keypoints, dropped persons, false positives
    (some images with more than maxDets = 20), random and tied scores, all-zero-score rows."""
    rng = np.random.default_rng(seed)
    sizes = {im["id"]: (im.get("width", 640), im.get("height", 480)) for im in gt["images"]}
    out = []
    for ann in gt["annotations"]:
        if rng.random() < 0.2:
            continue
        x, y, w, h = ann["bbox"]
        kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(num_keypoints, 3)
        unlabelled = kps[:, 2] == 0
        kps[unlabelled, 0] = x + rng.random(unlabelled.sum()) * w
        kps[unlabelled, 1] = y + rng.random(unlabelled.sum()) * h
        noise = rng.uniform(0.0, 0.08) * np.sqrt(max(w * h, 1.0))
        kps[:, :2] += rng.normal(0.0, noise, size=(num_keypoints, 2))
        out.append(_entry(ann["image_id"], kps[:, :2], rng))
    for image_id, (width, height) in sizes.items():
        count = 25 if rng.random() < 0.1 else rng.integers(0, 3)
        for _ in range(count):
            center = rng.random(2) * (width, height)
            xy = center + rng.normal(0.0, rng.uniform(5, 80), size=(num_keypoints, 2))
            out.append(_entry(image_id, xy, rng, max_score=0.6))
    rng.shuffle(out)
    return out


def _entry(image_id, xy, rng, max_score=1.0):
    conf = rng.random(len(xy))
    if rng.random() < 0.15:
        conf[:] = 0.0
    score = float(rng.random() * max_score)
    if rng.random() < 0.3:
        score = round(score, 1)  # ties between persons exercise the stable sort order
    kps = np.concatenate([xy, conf[:, None]], axis=1).reshape(-1)
    return {"image_id": int(image_id), "category_id": 1, "keypoints": kps.tolist(), "score": score}


def reference_coco(gt_path, results, sigmas):
    """pycocotools COCOeval keypoints with the given sigmas: the 10 stats."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        e = COCOeval(coco_gt, coco_dt, "keypoints")
        e.params.kpt_oks_sigmas = np.asarray(sigmas)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return dict(zip(COCO_STATS, e.stats))


def reference_crowdpose(gt_path, results, sigmas):
    """xtcocotools COCOeval 'keypoints_crowd', use_area=False: the 9 stats."""
    try:
        from xtcocotools.coco import COCO
        from xtcocotools.cocoeval import COCOeval
    except Exception as e:  # ImportError, or numpy ABI errors of a binary wheel
        pytest.skip(f"xtcocotools (the CrowdPose reference) is not importable: {e}")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        e = COCOeval(coco_gt, coco_dt, "keypoints_crowd", np.asarray(sigmas), use_area=False)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return dict(zip(CROWDPOSE_STATS, e.stats))


def assert_stats_equal(ours, reference):
    assert list(ours) == list(reference)
    np.testing.assert_allclose([ours[k] for k in ours], [reference[k] for k in ours],
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("path", "kind", "spec"),
    [
        ("coco/test_coco.json", "coco", None),
        ("crowdpose/test_crowdpose.json", "crowdpose", None),
        ("ochuman/test_ochuman.json", "coco", None),
        ("aic/test_aic.json", "coco", "aic14"),
    ],
)
def test_ground_truth_as_results_scores_one(path, kind, spec):
    gt_path = require(SAMPLES / path)
    evaluation = score_keypoints(gt_as_results(load(gt_path)), gt_path, spec=spec)
    assert evaluation.kind == kind  # picked from crowdIndex
    assert evaluation.stats["AP"] == 1.0
    assert evaluation.stats["AP50"] == 1.0
    assert evaluation.stats["AR"] == 1.0


def test_crowdpose_val_subset_ground_truth_scores_one():
    gt = subset(load(CROWDPOSE_VAL), 300)
    stats = evaluate_keypoints(gt_as_results(gt), gt)
    assert list(stats) == list(CROWDPOSE_STATS)
    assert all(v == 1.0 for v in stats.values()), stats


def test_crowdpose_val_full_ground_truth_scores_one():  # about 2 s: 2,000 images
    gt = load(CROWDPOSE_VAL)
    evaluation = score_keypoints(gt_as_results(gt), CROWDPOSE_VAL)
    assert evaluation.num_persons == 7074 and evaluation.num_images == 2000
    assert all(v == 1.0 for v in evaluation.stats.values()), evaluation.stats


def test_example_coco_predictions_match_pycocotools():
    gt_path = require(SAMPLES / "coco" / "test_coco.json")
    results = load(EXAMPLES / "example_coco_preds.json")
    ours = evaluate_keypoints(EXAMPLES / "example_coco_preds.json", gt_path)
    assert_stats_equal(ours, reference_coco(gt_path, results, COCO17.sigmas))
    assert 0.0 < ours["AP"] < 1.0


def test_example_coco_predictions_match_pycocotools_default_sigmas():
    gt_path = require(SAMPLES / "coco" / "test_coco.json")
    results = load(EXAMPLES / "example_coco_preds.json")
    default = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87,
                        .87, .89, .89]) / 10.0  # pycocotools' own constants
    assert_stats_equal(evaluate_keypoints(results, gt_path), reference_coco(gt_path, results,
                                                                             default))


def test_example_crowdpose_predictions_match_xtcocotools():
    gt_path = require(EXAMPLES / "example_crowdpose_val.json")
    results = load(EXAMPLES / "example_crowdpose_preds.json")
    ours = evaluate_keypoints(EXAMPLES / "example_crowdpose_preds.json", gt_path)
    assert_stats_equal(ours, reference_crowdpose(gt_path, results, CROWDPOSE14.sigmas))
    assert 0.0 < ours["AP"] < 1.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_perturbed_predictions_match_pycocotools(seed):
    gt_path = require(COCO_TINY_VAL)
    results = perturbed_results(load(gt_path), seed, 17)
    assert_stats_equal(evaluate_keypoints(results, gt_path),
                       reference_coco(gt_path, results, COCO17.sigmas))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_perturbed_predictions_match_xtcocotools(seed, tmp_path):
    gt = subset(load(CROWDPOSE_VAL), 120)  # easy, medium and hard images; crowd and 0-kp GTs
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    results = perturbed_results(gt, seed, 14)
    assert any(not any(r["keypoints"][2::3]) for r in results)  # all-zero-score rows present
    reference = reference_crowdpose(gt_path, results, CROWDPOSE14.sigmas)
    assert_stats_equal(evaluate_keypoints(results, gt_path), reference)


def test_perturbed_aic_predictions_match_pycocotools_with_bbox_area(tmp_path):
    # AIC has no 'area' and no 'iscrowd': scored with area = bbox w*h*0.53, as xtcocotools'
    # use_area=False does; the pycocotools reference gets the same fields filled in.
    gt = load(SAMPLES / "aic" / "test_aic.json")
    results = perturbed_results(gt, 5, 14)
    filled = copy.deepcopy(gt)
    for ann in filled["annotations"]:
        ann["area"] = ann["bbox"][2] * ann["bbox"][3] * 0.53
        ann["iscrowd"] = 0
    gt_path = tmp_path / "aic_filled.json"
    gt_path.write_text(json.dumps(filled))
    ours = evaluate_keypoints(results, SAMPLES / "aic" / "test_aic.json", spec=AIC14)
    assert_stats_equal(ours, reference_coco(gt_path, results, AIC14.sigmas))


def test_all_zero_score_detection_is_dropped_only_for_crowdpose():
    gt = load(SAMPLES / "crowdpose" / "test_crowdpose.json")
    results = gt_as_results(gt)
    ghost = copy.deepcopy(results[0])
    ghost["keypoints"][2::3] = [0] * 14
    ghost["score"] = 2.0  # ranked first; takes the GT match if it is kept
    crowd = evaluate_keypoints([ghost, *results], gt, kind="crowdpose")
    coco = evaluate_keypoints([ghost, *results], gt, kind="coco", spec=CROWDPOSE14)
    assert crowd["AP"] == 1.0
    assert coco["AP"] < 1.0  # pycocotools keeps it: the real duplicate becomes a false positive


def test_ground_truth_id_zero_still_matches():
    # pycocotools records matches by annotation id and treats id 0 as "unmatched"; bupose
    # renumbers GT ids (as xtcocotools fixed it) so a GT with id 0 is matched like any other.
    gt = copy.deepcopy(load(SAMPLES / "crowdpose" / "test_crowdpose.json"))
    gt["annotations"][0]["id"] = 0
    assert evaluate_keypoints(gt_as_results(gt), gt)["AP"] == 1.0


def test_empty_results_score_zero_with_a_warning():
    gt = load(SAMPLES / "coco" / "test_coco.json")
    with pytest.warns(EvaluationWarning, match="no result entries"):
        stats = evaluate_keypoints([], gt)
    assert stats["AP"] == 0.0 and stats["AR"] == 0.0


def test_format_table_lists_every_statistic():
    gt = load(SAMPLES / "crowdpose" / "test_crowdpose.json")
    text = format_keypoint_stats(score_keypoints(gt_as_results(gt), gt))
    header, values = text.splitlines()[-2:]
    assert header.split() == list(CROWDPOSE_STATS)
    assert len(values.split()) == len(CROWDPOSE_STATS)
    assert len(header) == len(values)  # columns aligned


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r[1].update(keypoints=r[1]["keypoints"][:-3]), "result entry 1: keypoints has"),
        (lambda r: r[2].update(image_id=999999), "result entry 2: image_id 999999 is not"),
        (lambda r: r[0]["keypoints"].__setitem__(4, float("nan")), "result entry 0: keypoints"),
        (lambda r: r[3].update(score=float("inf")), "result entry 3: score"),
        (lambda r: r[1].pop("score"), "result entry 1 lacks 'score'"),
        (lambda r: r[1].update(category_id=7), "result entry 1: category_id 7"),
        (lambda r: r[0]["keypoints"].__setitem__(0, "12"), "result entry 0: keypoints holds"),
        (lambda r: r.__setitem__(2, [1, 2, 3]), "result entry 2 is a list"),
    ],
)
def test_bad_results_raise_data_error_naming_file_and_entry(tmp_path, mutate, message):
    gt_path = require(SAMPLES / "coco" / "test_coco.json")
    results = gt_as_results(load(gt_path))
    mutate(results)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(results))
    with pytest.raises(DataError, match=message) as info:
        evaluate_keypoints(path, gt_path)
    assert str(path) in str(info.value)


def test_malformed_or_non_list_results_file(tmp_path):
    gt_path = require(SAMPLES / "coco" / "test_coco.json")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"image_id": 785,')
    with pytest.raises(DataError, match=r"broken\.json: malformed results file"):
        evaluate_keypoints(broken, gt_path)
    as_dict = tmp_path / "dict.json"
    as_dict.write_text('{"annotations": []}')
    with pytest.raises(DataError, match=r"dict\.json: expected a JSON list"):
        evaluate_keypoints(as_dict, gt_path)


def test_spec_resolution_errors():
    aic = load(SAMPLES / "aic" / "test_aic.json")
    with pytest.raises(ConfigError, match="K = 14"):
        evaluate_keypoints(gt_as_results(aic), aic)  # coco kind, K = 14: no default spec
    with pytest.raises(ConfigError, match="has K = 17"):
        evaluate_keypoints(gt_as_results(aic), aic, spec="coco17")


def test_crowdpose_kind_needs_crowd_index_on_every_image():
    gt = copy.deepcopy(load(SAMPLES / "crowdpose" / "test_crowdpose.json"))
    del gt["images"][1]["crowdIndex"]
    with pytest.raises(DataError, match="image 1 .*crowdIndex"):
        evaluate_keypoints(gt_as_results(gt), gt)


def test_bad_ground_truth_raises_data_error():
    gt = copy.deepcopy(load(SAMPLES / "coco" / "test_coco.json"))
    del gt["annotations"][3]["bbox"]
    with pytest.raises(DataError, match="annotation 3 lacks 'bbox'"):
        evaluate_keypoints([], gt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EvaluationWarning)
        with pytest.raises(DataError, match="needs a list 'images'"):
            evaluate_keypoints([], {"annotations": [], "categories": []})
