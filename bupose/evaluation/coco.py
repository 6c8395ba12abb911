"""Keypoint AP for COCO-style data: the COCO protocol and the CrowdPose protocol, on pycocotools.

``kind="coco"``: pycocotools ``COCOeval(gt, dt, "keypoints")`` with the spec's OKS sigmas and
maxDets 20 (ALGORITHMS.md §1.2). Stats: AP, AP50, AP75, AP_M, AP_L, AR, AR50, AR75, AR_M, AR_L.

``kind="crowdpose"``: the semantics of xtcocotools ``COCOeval(gt, dt, "keypoints_crowd", sigmas,
use_area=False)``, which reproduces the official crowdposetools, without depending on xtcocotools:

* the OKS scale and the area-range test of a GT use ``bbox w * h * 0.53`` (any GT ``area`` is
  ignored);
* a GT is ignored when ``iscrowd`` or when its ``num_keypoints`` field is 0 (CrowdPose counts only
  v = 2 keypoints there, so a GT with only occluded keypoints is ignored);
* a detection whose K keypoint confidences are all <= 0 is dropped before matching (xtcocotools;
  the official crowdposetools keeps it);
* AP_easy / AP_medium / AP_hard: the evaluation restricted to the images with crowdIndex < 0.2,
  0.2 <= crowdIndex < 0.8 and >= 0.8, each the plain mean of the whole precision array at area
  "all" (its -1 entries included), rounded to 4 decimals as the reference does.
Stats: AP, AP50, AP75, AR, AR50, AR75, AP_easy, AP_medium, AP_hard.

Preparation shared by both kinds: ground-truth annotation ids are renumbered 1..N (pycocotools
mistakes a GT id of 0 for "unmatched"); a GT without ``iscrowd`` gets 0, without ``num_keypoints``
the count of keypoints with v > 0 and, for the COCO kind, without ``area`` the
``bbox w * h * 0.53`` of xtcocotools' ``use_area=False`` (how AIC is scored). Results become a
pycocotools results object the way ``loadRes`` builds one. A statistic is -1 when no ground truth
falls in its range.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bupose.errors import ConfigError, DataError
from bupose.evaluation.results import _is_int, read_results, validate_coco_results
from bupose.structures.spec import KeypointSpec, get_spec, load_spec
from bupose.utils.io import read_json

COCO_STATS = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")
CROWDPOSE_STATS = (
    "AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard",
)
KINDS = ("coco", "crowdpose")
CROWD_INDEX_SPLIT = (0.2, 0.8)  # easy < 0.2 <= medium < 0.8 <= hard
CROWDPOSE_AREA_FACTOR = 0.53  # GT "area" = bbox w * h * 0.53 (crowdposetools)


class EvaluationWarning(UserWarning):
    """A results file that can be scored but probably is not what was meant (e.g. empty)."""


@dataclass(frozen=True)
class KeypointEvaluation:
    """The outcome of scoring one results file.

    Attributes:
        kind: "coco" or "crowdpose".
        spec: the KeypointSpec whose sigmas were used.
        stats: statistic name -> value, in the order of COCO_STATS or CROWDPOSE_STATS.
        num_images: images of the ground truth (all are evaluated).
        num_persons: ground-truth persons that count (not crowd, num_keypoints > 0).
        num_results: result entries scored (for CrowdPose: after dropping all-zero-score ones).
    """

    kind: str
    spec: KeypointSpec
    stats: dict[str, float]
    num_images: int
    num_persons: int
    num_results: int


def evaluate_keypoints(
    results: str | os.PathLike | Sequence[dict[str, Any]],
    annotations: str | os.PathLike | dict[str, Any],
    kind: str | None = None,
    spec: KeypointSpec | str | None = None,
) -> dict[str, float]:
    """Score keypoint results against COCO-style ground truth; see ``score_keypoints``."""
    return score_keypoints(results, annotations, kind, spec).stats


def score_keypoints(
    results: str | os.PathLike | Sequence[dict[str, Any]],
    annotations: str | os.PathLike | dict[str, Any],
    kind: str | None = None,
    spec: KeypointSpec | str | None = None,
) -> KeypointEvaluation:
    """Score keypoint results with the COCO or CrowdPose protocol (module docstring).

    Args:
        results: a results JSON file or the list of entries (``bupose.evaluation.results``).
        annotations: a COCO-style ground-truth JSON file or its loaded dict.
        kind: "coco" or "crowdpose"; None picks crowdpose when the images carry ``crowdIndex``.
        spec: the keypoint spec (object, built-in name or spec file) giving the OKS sigmas; None
            picks coco17 for K = 17 and crowdpose14 for K = 14 with the CrowdPose kind.

    Raises:
        DataError: malformed annotations or results (the message names the file and the entry).
        ConfigError: unknown kind, or no spec given when K has no default.
    """
    gt, gt_source = _load_annotations(annotations)
    kind = kind or detect_kind(gt)
    if kind not in KINDS:
        raise ConfigError(f"unknown evaluation kind {kind!r} (known: {', '.join(KINDS)})")
    dataset = prepare_ground_truth(gt, kind, gt_source)
    num_keypoints = dataset["num_keypoints"]
    spec = resolve_spec(spec, num_keypoints, kind)
    data, source = read_results(results)
    entries = validate_coco_results(
        data, source, num_keypoints, {im["id"] for im in dataset["images"]},
        {c["id"] for c in dataset["categories"]}, gt_source,
    )
    if not entries:
        warnings.warn(f"{source}: no result entries; every AP and AR is 0",
                      EvaluationWarning, stacklevel=2)
    if kind == "crowdpose":
        entries = [e for e in entries if any(c > 0 for c in e["keypoints"][2::3])]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = _coco_object(dataset)
        coco_dt = _results_object(coco_gt, entries)
        evaluator = _run_cocoeval(coco_gt, coco_dt, np.asarray(spec.sigmas, dtype=np.float64))
        if kind == "coco":
            stats = dict(zip(COCO_STATS, (float(s) for s in evaluator.stats)))
        else:
            stats = _crowdpose_stats(evaluator, dataset["images"])
    persons = sum(not a["iscrowd"] and a["num_keypoints"] > 0 for a in dataset["annotations"])
    return KeypointEvaluation(kind, spec, stats, len(dataset["images"]), persons, len(entries))


def _load_annotations(annotations: str | os.PathLike | dict[str, Any]) -> tuple[Any, str]:
    if isinstance(annotations, (str, os.PathLike)):
        return read_json(annotations, "annotation file"), str(annotations)
    return annotations, "annotations"


def detect_kind(gt: Any) -> str:
    """"crowdpose" when the ground-truth images carry ``crowdIndex``, else "coco"."""
    images = gt.get("images") if isinstance(gt, dict) else None
    if isinstance(images, list) and any(isinstance(im, dict) and "crowdIndex" in im
                                        for im in images):
        return "crowdpose"
    return "coco"


def resolve_spec(spec: KeypointSpec | str | None, num_keypoints: int, kind: str) -> KeypointSpec:
    """The spec to score with: the one given (checked against K), else the default for K."""
    if spec is None:
        if num_keypoints == 17:
            return get_spec("coco17")
        if num_keypoints == 14 and kind == "crowdpose":
            return get_spec("crowdpose14")
        raise ConfigError(
            f"the ground truth has K = {num_keypoints} keypoints and no default spec fits "
            f"(17 -> coco17, 14 with --kind crowdpose -> crowdpose14); give --spec NAME or a "
            "spec file (e.g. aic14)"
        )
    if not isinstance(spec, KeypointSpec):
        spec = load_spec(spec)
    if spec.num_keypoints != num_keypoints:
        raise ConfigError(
            f"keypoint spec {spec.name!r} has K = {spec.num_keypoints}, the ground truth has "
            f"K = {num_keypoints}"
        )
    return spec


def prepare_ground_truth(gt: Any, kind: str, source: str) -> dict[str, Any]:
    """A checked copy of a COCO-style ground truth, ready for pycocotools (module docstring).

    Returns a dict with ``images``, ``annotations`` (copies, ids 1..N, ``iscrowd``,
    ``num_keypoints`` and ``area`` filled in), ``categories`` and ``num_keypoints`` (K).
    Raises DataError naming ``source`` and the offending image or annotation index.
    """
    if not isinstance(gt, dict):
        raise DataError(f"{source}: expected a COCO-style object, got a {type(gt).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise DataError(f"{source}: needs a list {key!r} (COCO keypoint format)")
    images = [_check_image(im, i, kind, source) for i, im in enumerate(gt["images"])]
    ids = [im["id"] for im in images]
    if len(set(ids)) != len(ids):
        raise DataError(f"{source}: image ids are not unique")
    categories = gt["categories"]
    if not categories or not all(isinstance(c, dict) and _is_int(c.get("id")) for c in categories):
        raise DataError(f"{source}: 'categories' must list objects with an integer 'id'")
    num_keypoints = _num_keypoints(gt, source)
    annotations = [
        _check_annotation(ann, i, num_keypoints, kind, source)
        for i, ann in enumerate(gt["annotations"])
    ]
    return {"images": images, "annotations": annotations, "categories": categories,
            "num_keypoints": num_keypoints}


def _check_image(image: Any, index: int, kind: str, source: str) -> dict[str, Any]:
    where = f"{source}: image {index}"
    if not isinstance(image, dict) or not _is_int(image.get("id")):
        raise DataError(f"{where} must be an object with an integer 'id'")
    if kind == "crowdpose":
        crowd_index = image.get("crowdIndex")
        if isinstance(crowd_index, bool) or not isinstance(crowd_index, (int, float)):
            raise DataError(
                f"{where} (id {image['id']}) has no numeric 'crowdIndex', which the CrowdPose "
                "protocol needs on every image"
            )
    return image


def _num_keypoints(gt: dict[str, Any], source: str) -> int:
    """K from the first annotation with keypoints, else from the category's keypoint names."""
    for ann in gt["annotations"]:
        if isinstance(ann, dict) and isinstance(ann.get("keypoints"), list) and ann["keypoints"]:
            return len(ann["keypoints"]) // 3
    for cat in gt["categories"]:
        if isinstance(cat, dict) and cat.get("keypoints"):
            return len(cat["keypoints"])
    raise DataError(f"{source}: no keypoints in any annotation or category; cannot tell K")


def _check_annotation(
    ann: Any, index: int, num_keypoints: int, kind: str, source: str
) -> dict[str, Any]:
    where = f"{source}: annotation {index}"
    if not isinstance(ann, dict):
        raise DataError(f"{where} is a {type(ann).__name__}, not an object")
    missing = [k for k in ("image_id", "category_id", "keypoints", "bbox") if k not in ann]
    if missing:
        raise DataError(f"{where} lacks {', '.join(repr(k) for k in missing)}")
    keypoints = np.asarray(ann["keypoints"])
    if keypoints.ndim != 1 or keypoints.dtype.kind not in "iuf" or \
            len(keypoints) != 3 * num_keypoints:
        raise DataError(
            f"{where}: keypoints must be {3 * num_keypoints} numbers (K = {num_keypoints} from "
            "the first annotation)"
        )
    bbox = np.asarray(ann["bbox"])
    if bbox.shape != (4,) or bbox.dtype.kind not in "iuf":
        raise DataError(f"{where}: bbox must be [x, y, w, h]")
    out = dict(ann, id=index + 1)
    out.setdefault("iscrowd", 0)
    if "num_keypoints" not in out:
        out["num_keypoints"] = int(np.count_nonzero(keypoints[2::3] > 0))
    if kind == "crowdpose" or "area" not in out:
        out["area"] = ann["bbox"][2] * ann["bbox"][3] * CROWDPOSE_AREA_FACTOR
    return out


def _coco_object(dataset: dict[str, Any]) -> Any:
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = {k: dataset[k] for k in ("images", "annotations", "categories")}
    coco.createIndex()
    return coco


def _results_object(coco_gt: Any, entries: list[dict[str, Any]]) -> Any:
    """A pycocotools results object, built as ``COCO.loadRes`` builds one for keypoints."""
    from pycocotools.coco import COCO

    use_bbox = bool(entries) and "bbox" in entries[0]
    anns = []
    if entries:
        kps = np.asarray([e["keypoints"] for e in entries], dtype=np.float64)
        x0, x1 = kps[:, 0::3].min(axis=1), kps[:, 0::3].max(axis=1)
        y0, y1 = kps[:, 1::3].min(axis=1), kps[:, 1::3].max(axis=1)
    for i, entry in enumerate(entries):
        ann = dict(entry, id=i + 1)
        if use_bbox:
            ann["area"] = entry["bbox"][2] * entry["bbox"][3]
        else:
            ann["area"] = (x1[i] - x0[i]) * (y1[i] - y0[i])
            ann["bbox"] = [x0[i], y0[i], x1[i] - x0[i], y1[i] - y0[i]]
        anns.append(ann)
    res = COCO()
    res.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "categories": copy.deepcopy(coco_gt.dataset["categories"]),
        "annotations": anns,
    }
    res.createIndex()
    return res


def _run_cocoeval(coco_gt: Any, coco_dt: Any, sigmas: np.ndarray) -> Any:
    """pycocotools keypoint evaluation (all GT images, maxDets 20), accumulated and summarised."""
    from pycocotools.cocoeval import COCOeval

    evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
    evaluator.params.kpt_oks_sigmas = sigmas
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator


def _crowdpose_stats(evaluator: Any, images: list[dict[str, Any]]) -> dict[str, float]:
    first, second = CROWD_INDEX_SPLIT
    easy = [im["id"] for im in images if im["crowdIndex"] < first]
    medium = [im["id"] for im in images if first <= im["crowdIndex"] < second]
    hard = [im["id"] for im in images if im["crowdIndex"] >= second]
    overall = [float(evaluator.stats[i]) for i in (0, 1, 2, 5, 6, 7)]
    by_crowd = [_subset_mean_precision(evaluator, ids) for ids in (easy, medium, hard)]
    return dict(zip(CROWDPOSE_STATS, overall + by_crowd))


def _subset_mean_precision(evaluator: Any, image_ids: list[int]) -> float:
    """Mean of the precision array at area "all" over a subset of images, rounded to 4 decimals.

    Equal to re-running evaluate() and accumulate() on the subset (what the reference does):
    per-image matching does not depend on the other images, so the per-image results of the full
    run are re-accumulated in the same (sorted image id) order.
    """
    params = evaluator._paramsEval
    position = {image_id: i for i, image_id in enumerate(params.imgIds)}
    keep = sorted(position[i] for i in set(image_ids))
    n_images, n_areas = len(params.imgIds), len(params.areaRng)
    n_cats = len(params.catIds) if params.useCats else 1
    subset = copy.copy(evaluator)
    subset.evalImgs = [
        evaluator.evalImgs[(k * n_areas + a) * n_images + i]
        for k in range(n_cats) for a in range(n_areas) for i in keep
    ]
    subset._paramsEval = copy.deepcopy(params)
    subset._paramsEval.imgIds = [params.imgIds[i] for i in keep]
    subset.params = copy.deepcopy(subset._paramsEval)
    subset.accumulate()
    return float(np.round(np.mean(subset.eval["precision"][:, :, :, 0, :]), 4))


def format_keypoint_stats(evaluation: KeypointEvaluation) -> str:
    """The statistics as an aligned two-row table, with a one-line header."""
    if evaluation.kind == "coco":
        title = "COCO keypoint AP (pycocotools protocol, maxDets 20)"
    else:
        title = "CrowdPose keypoint AP (crowdposetools / xtcocotools keypoints_crowd protocol)"
    header = (
        f"{title}\nspec {evaluation.spec.name} | {evaluation.num_images} images | "
        f"{evaluation.num_persons} GT persons | {evaluation.num_results} results"
    )
    names = list(evaluation.stats)
    widths = [max(len(n), 6) for n in names]
    row_names = "  ".join(n.rjust(w) for n, w in zip(names, widths))
    row_values = "  ".join(
        f"{evaluation.stats[n]:.3f}".rjust(w) for n, w in zip(names, widths)
    )
    return f"{header}\n{row_names}\n{row_values}"
