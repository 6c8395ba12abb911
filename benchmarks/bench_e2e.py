"""End to end, W32-512, flip, one scale: the official ``tools/valid.py`` path vs ``bupose``.

Both sides run in this process, one after the other on each image, with the same random
HigherHRNet-W32-512 weights (BatchNorm statistics randomised, the final layers set so that ~0.05%
of each heatmap passes the detection threshold and people are found: an untrained net finds
nobody and its decoding costs nothing). Per image, the median of ``--repeat`` runs after one
warm-up of: reading the file, preprocessing, the network (two flip passes), aggregation,
grouping and the projection to image pixels.

The official side is ``valid.py``'s loop body on a local checkout of
HRNet/HigherHRNet-Human-Pose-Estimation (``lib/`` imported as is; ``pip install -e .[bench]``
brings yacs and munkres). It imports torchvision, which does not load beside this torch: a
stand-in provides the two transforms ``valid.py`` uses (ToTensor: uint8 HWC -> float CHW / 255,
Normalize: (x - mean) / std, both exactly as torchvision computes them), and the ``dataset``
package is entered without its ``__init__`` (which needs the CrowdPose toolkit).

bupose variants: ``fp32`` (the default fast path: BatchNorm folded, channels-last),
``fp32-plain`` (the module as built), ``bf16`` (autocast), ``onnxruntime`` (the fp32 ONNX export).
Agreement: the official people each variant reproduces exactly (joints within 1e-3 px, values
and scores within 1e-5) and those it matches with OKS >= 0.99 (COCO sigmas, one-to-one); for bf16
and onnxruntime also the OKS with bupose fp32's people. The random net amplifies float noise (its
maps differ by ~1e-4 of their scale between summation orders), so exact equality with the official
code is shown by the fixture tests with the official tiny model (tests/cli/test_infer_cmd.py).

    python benchmarks/bench_e2e.py --official /tmp/hhr [--repeat 2] [--variants fp32,bf16]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples" / "coco"
YAML = Path("experiments") / "coco" / "higher_hrnet" / "w32_512_adam_lr1e-3.yaml"
VARIANTS = ("fp32", "fp32-plain", "bf16", "onnxruntime")


def _torchvision_standin() -> None:
    """Register ``torchvision.transforms`` with the ToTensor / Normalize ``valid.py`` uses."""
    class ToTensor:
        def __call__(self, image: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(image).permute(2, 0, 1).contiguous().float().div(255)

    class Normalize:
        def __init__(self, mean: list[float], std: list[float]) -> None:
            self.mean = torch.as_tensor(mean)[:, None, None]
            self.std = torch.as_tensor(std)[:, None, None]

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            return x.sub(self.mean).div(self.std)

    class Compose:
        def __init__(self, steps: list[Callable[[Any], Any]]) -> None:
            self.steps = steps

        def __call__(self, x: Any) -> Any:
            for step in self.steps:
                x = step(x)
            return x

    vision = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    transforms.ToTensor, transforms.Normalize, transforms.Compose = ToTensor, Normalize, Compose
    transforms.functional = types.ModuleType("torchvision.transforms.functional")
    vision.transforms = transforms
    sys.modules.update({"torchvision": vision, "torchvision.transforms": transforms,
                        "torchvision.transforms.functional": transforms.functional})


def load_official(checkout: Path) -> types.SimpleNamespace:
    """The official modules ``valid.py`` uses, imported from ``checkout/lib``."""
    lib = checkout / "lib"
    if not (lib / "core" / "inference.py").is_file():
        raise SystemExit(f"{checkout}: not a HigherHRNet checkout (lib/core/inference.py missing)")
    _torchvision_standin()
    sys.path.insert(0, str(lib))
    dataset = types.ModuleType("dataset")
    dataset.__path__ = [str(lib / "dataset")]  # type: ignore[attr-defined]
    sys.modules["dataset"] = dataset
    import models  # type: ignore[import-not-found]
    from config import cfg  # type: ignore[import-not-found]
    from core.group import HeatmapParser  # type: ignore[import-not-found]
    from core.inference import (  # type: ignore[import-not-found]
        aggregate_results,
        get_multi_stage_outputs,
    )
    from utils import transforms as T  # type: ignore[import-not-found]

    config = cfg.clone()
    config.defrost()
    config.merge_from_file(str(checkout / YAML))
    config.freeze()
    return types.SimpleNamespace(cfg=config, models=models, HeatmapParser=HeatmapParser,
                                 get_multi_stage_outputs=get_multi_stage_outputs,
                                 aggregate_results=aggregate_results, T=T)


def random_model(image: np.ndarray, seed: int = 0, heat_scale: float = 0.025
                 ) -> torch.nn.Module:
    """HigherHRNet-W32-512 with random weights that find people (module docstring): each
    heatmap is ``heat_scale`` x its standard score on ``image``, so the larger ``heat_scale``,
    the more pixels pass the 0.1 detection threshold and the more people are found."""
    from bupose.inference.predictor import Predictor
    from bupose.models import create_model

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = create_model("higherhrnet_w32_512").eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
                m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
        finals = model.head.final_layers  # type: ignore[union-attr]
        for layer in finals:
            layer.weight.normal_(0, 1, generator=g)
            layer.bias.zero_()
        # per joint and stage: heat_scale x the standard score
        x = Predictor(model, fast=False).prepare(image, 1.0)[0]
        for stage, layer in enumerate(finals):
            heat = model(x)[stage][0, :model.meta.spec.num_keypoints].flatten(1)
            gain = heat_scale / heat.std(1).clamp_min(1e-12)
            k = len(gain)
            layer.weight[:k].mul_(gain[:, None, None, None])
            layer.bias[:k].copy_(-gain * heat.mean(1))
    return model


def official_model(official: types.SimpleNamespace, ours: torch.nn.Module) -> torch.nn.Module:
    from bupose.models.keymap import to_official

    net = official.models.pose_higher_hrnet.get_pose_net(official.cfg, is_train=False)
    net.load_state_dict(to_official(ours.state_dict()), strict=True)
    return net.eval()


def official_image(official: types.SimpleNamespace, net: torch.nn.Module, parser: Any,
                   path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``valid.py``'s loop body for one image (read as its COCO dataset does): people
    (N, K, 3) [x, y, value] in image pixels and their scores."""
    import cv2

    cfg, T = official.cfg, official.T
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    transforms = sys.modules["torchvision.transforms"]
    to_input = transforms.Compose([transforms.ToTensor(), transforms.Normalize(
        mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    scales = cfg.TEST.SCALE_FACTOR
    base_size, center, scale = T.get_multi_scale_size(image, cfg.DATASET.INPUT_SIZE, 1.0,
                                                      min(scales))
    with torch.no_grad():
        final_heatmaps, tags_list = None, []
        for s in sorted(scales, reverse=True):
            resized, center, scale = T.resize_align_multi_scale(
                image, cfg.DATASET.INPUT_SIZE, s, min(scales))
            x = to_input(resized).unsqueeze(0)
            _, heatmaps, tags = official.get_multi_stage_outputs(
                cfg, net, x, cfg.TEST.FLIP_TEST, cfg.TEST.PROJECT2IMAGE, base_size)
            final_heatmaps, tags_list = official.aggregate_results(
                cfg, s, final_heatmaps, tags_list, heatmaps, tags)
        final_heatmaps = final_heatmaps / float(len(scales))
        grouped, scores = parser.parse(final_heatmaps, torch.cat(tags_list, dim=4),
                                       cfg.TEST.ADJUST, cfg.TEST.REFINE)
        results = T.get_final_preds(grouped, center, scale,
                                    [final_heatmaps.size(3), final_heatmaps.size(2)])
    people = np.asarray(results, np.float32).reshape(len(results), -1, 5)[..., :3]
    return people, np.asarray(scores, np.float32)


def identical(ours: Any, people: np.ndarray, scores: np.ndarray) -> int:
    """How many official people ours reproduces exactly (joints within 1e-3 px, joint values
    and person scores within 1e-5), matched one to one."""
    free, hits = list(range(len(ours))), 0
    for person, score in zip(people, scores, strict=True):
        for i in free:
            kp = ours.keypoints[i]
            if (np.abs(kp[:, :2] - person[:, :2]).max() <= 1e-3
                    and np.abs(kp[:, 2] - person[:, 2]).max() <= 1e-5
                    and abs(float(ours.scores[i]) - float(score)) <= 1e-5):
                free.remove(i)
                hits += 1
                break
    return hits


def oks_to_reference(poses: np.ndarray, reference: np.ndarray,
                     sigmas: Any = None) -> list[float]:
    """For each reference person (N, K, 3), the OKS (``sigmas``, default COCO's) of the person
    of ``poses`` (M, K, 3) it is matched to, one to one, greedily by OKS; 0 when none is left."""
    from bupose.inference.track import pose_oks
    from bupose.structures.spec import get_spec

    sigmas = get_spec("coco17").sigmas if sigmas is None else sigmas
    pairs = sorted(((pose_oks(a, b, sigmas), i, j) for i, a in enumerate(reference)
                    for j, b in enumerate(poses)), reverse=True)
    best, used_i, used_j = [0.0] * len(reference), set(), set()
    for oks, i, j in pairs:
        if i not in used_i and j not in used_j:
            best[i] = oks
            used_i.add(i)
            used_j.add(j)
    return best


def bupose_variant(name: str, model: torch.nn.Module, tmp: Path) -> Any:
    """A predictor (the model's test settings: flip, scale 1) for one bupose variant."""
    from bupose.inference.predictor import Predictor

    if name == "onnxruntime":
        from bupose.export import export_model
        from bupose.inference.onnx_backend import load_exported

        exported = load_exported(export_model(model, tmp / "w32.onnx", "onnx", dynamic=True))
        return Predictor(exported, spec=model.meta.spec)  # type: ignore[union-attr]
    if name == "fp32-plain":
        return Predictor(model, fast=False)
    return Predictor(model, precision="bf16" if name == "bf16" else "fp32")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bupose.bench.measure import median_seconds, peak_rss_mb
    from bupose.utils.io import read_image

    images = sorted(args.images.glob("*.jpg"))[: args.count]
    if not images:
        raise SystemExit(f"{args.images}: no .jpg images")
    official = load_official(args.official)
    model = random_model(read_image(images[0]), heat_scale=args.heat_scale)
    net = official_model(official, model)
    parser = official.HeatmapParser(official.cfg)
    tmp = Path(tempfile.mkdtemp(prefix="bench_e2e_"))
    predictors = {v: bupose_variant(v, model, tmp) for v in args.variants}
    rows: dict[str, Any] = {"official": [], **{v: [] for v in args.variants}}
    quality: dict[str, Any] = {v: {"identical": 0, "oks_official": [], "oks_fp32": []}
                               for v in args.variants}
    total = 0
    for path in images:
        people, scores = official_image(official, net, parser, path)
        total += len(people)
        rows["official"].append(median_seconds(
            lambda p=path: official_image(official, net, parser, p), args.repeat, 0))
        reference = predictors["fp32"](read_image(path)) if "fp32" in predictors else None
        for name, predictor in predictors.items():
            poses = predictor(read_image(path))
            rows[name].append(median_seconds(
                lambda p=path, f=predictor: f(read_image(p)), args.repeat, 0))
            quality[name]["identical"] += identical(poses, people, scores)
            quality[name]["oks_official"] += oks_to_reference(poses.keypoints, people)
            if reference is not None and name != "fp32":
                quality[name]["oks_fp32"] += oks_to_reference(poses.keypoints,
                                                              reference.keypoints)
        print(f"{path.name}: official {rows['official'][-1]:.2f} s, " + ", ".join(
            f"{v} {rows[v][-1]:.2f} s" for v in args.variants), file=sys.stderr)
    return {"machine": f"{platform.processor() or platform.machine()}, "
                       f"{torch.get_num_threads()} threads, torch {torch.__version__}",
            "images": [p.name for p in images], "official_people": total,
            "seconds": rows, "quality": quality, "peak_rss_mb": peak_rss_mb()}


def table(result: dict[str, Any]) -> str:
    official = statistics.mean(result["seconds"]["official"])
    people = result["official_people"] / len(result["images"])
    lines = [f"End to end, W32-512, flip, scale 1, {len(result['images'])} COCO images, "
             f"{people:.0f} people per image ({result['machine']}, malloc "
             f"{result.get('malloc', 'default')}); mean of per-image medians",
             "",
             "| pipeline | s / image | speed-up | official people: identical, OKS >= 0.99 | "
             "bupose fp32 people: OKS >= 0.99 |", "|---|---|---|---|---|",
             f"| official valid.py | {official:.2f} | 1.0x | - | - |"]
    for name, seconds in result["seconds"].items():
        if name == "official":
            continue
        q, mean = result["quality"][name], statistics.mean(seconds)
        near = _count_close(q["oks_official"])
        fp32 = _count_close(q["oks_fp32"]) if q["oks_fp32"] else "-"
        lines.append(f"| bupose {name} | {mean:.2f} | {official / mean:.1f}x | "
                     f"{q['identical']}, {near} | {fp32} |")
    return "\n".join(lines)


def _count_close(oks: list[float]) -> str:
    return f"{sum(o >= 0.99 for o in oks)}/{len(oks)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", type=Path, required=True, help="HigherHRNet checkout")
    ap.add_argument("--images", type=Path, default=SAMPLES)
    ap.add_argument("--count", type=int, default=4, help="images taken from --images")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, from {','.join(VARIANTS)} (fp32 first)")
    ap.add_argument("--heat-scale", type=float, default=0.025,
                    help="random net's heatmap value per standard deviation: more people when "
                         "larger (0.025: ~50 per image, 0.02: a few)")
    add_common_args(ap)
    args = ap.parse_args()
    args.variants = [v for v in args.variants.split(",") if v]
    if any(v not in VARIANTS for v in args.variants):
        ap.error(f"--variants: choose from {', '.join(VARIANTS)}")
    run_and_report(args, run, table)


def add_common_args(ap: argparse.ArgumentParser) -> None:
    """``--threads``, ``--malloc``, ``--json`` (every script that times the official code)."""
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--malloc", choices=("default", "tuned"), default="default",
                    help="glibc malloc for this process, both sides: as the official code runs "
                         "(default) or as `bupose` commands run (tuned: bupose.utils.allocator)")
    ap.add_argument("--json", type=Path, default=None)


def run_and_report(args: argparse.Namespace, run: Callable[[argparse.Namespace], dict],
                   table: Callable[[dict], str]) -> None:
    """``--threads`` and ``--malloc``, then ``run(args)``: its table printed, its figures (and
    the allocator state) in ``--json``."""
    from bupose.utils.allocator import malloc_state, tune_malloc

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.malloc == "tuned" and not tune_malloc():
        raise SystemExit("--malloc tuned: glibc's mallopt is not available here")
    result = run(args)
    result["malloc"] = malloc_state()
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
