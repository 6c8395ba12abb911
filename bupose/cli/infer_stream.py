"""``bupose infer`` for videos, webcams, globs, batches, exported networks and torchrun.

Hooks of ``cli/infer_cmd.py``: ``add_stream_args`` (its flags), ``infer_model`` (the model, or the
exported file of ``--onnx``) and ``wants_stream`` / ``run_stream`` (this module's loop, taken for
video / webcam / glob inputs, ``--batch`` > 1, ``--track`` or a torchrun launch).

Images: ``--batch N`` runs images of equal network input size together (results equal to one at a
time); under ``torchrun --nproc_per_node N`` each process takes every N-th image (rank r: images
r, r + N, ...), the results are gathered in input order and rank 0 writes the one ``--json`` file:
byte for byte the file of a single-process run (``--save-maps`` / ``--draw`` files are written by
the process that did the image). That needs results independent of what a process ran before:
``bupose.utils.threads.quiet_numba_threads`` gives that, as well as speed.
Videos / webcams: per-frame JSON entries (``bupose.inference.video``), an annotated
``<stem>.mp4`` per video under ``--draw DIR``, ``track_id`` with ``--track``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bupose.errors import BuposeError, ConfigError


def add_stream_args(p: argparse.ArgumentParser) -> None:
    """--onnx, --backend, --batch, --track, --track-oks, --track-timeout, --max-frames."""
    g = p.add_argument_group("video, batches, exported networks")
    g.add_argument("--onnx", type=Path, default=None, metavar="FILE",
                   help="run a network exported by `bupose export` (ONNX with onnxruntime, or "
                        "TorchScript) instead of --checkpoint; same test pipeline and decoders")
    g.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="run the network in PyTorch (default) or in onnxruntime from an ONNX "
                        "export of the checkpoint, made once and cached; images with an AE "
                        "model then run without importing torch (fp32, CPU)")
    g.add_argument("--batch", type=int, default=1, metavar="N",
                   help="images (or video frames) per network call; images are grouped by "
                        "network input size, results equal one at a time (default 1)")
    g.add_argument("--track", action="store_true",
                   help="video: keep a track_id per person across frames (greedy OKS matching)")
    g.add_argument("--track-oks", type=float, default=0.3, metavar="T",
                   help="lowest OKS that continues a track (default 0.3)")
    g.add_argument("--track-timeout", type=int, default=30, metavar="FRAMES",
                   help="frames a track may be unmatched before it ends (default 30)")
    g.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="video / webcam: stop after N frames")


def infer_model(args: argparse.Namespace, use_default: bool = True) -> Any:
    """The network of ``bupose infer``: ``--onnx FILE`` or, with ``--backend onnxruntime``, the
    cached export of the checkpoint (``load_exported``); else the model the model arguments name
    (with ``use_default``, the shipped default model when none)."""
    from bupose.cli.common import model_from_args
    from bupose.cli.infer_onnx import onnx_file, uses_onnxruntime
    from bupose.utils.threads import quiet_numba_threads

    quiet_numba_threads()
    if getattr(args, "onnx", None) is None and not uses_onnxruntime(args):
        return model_from_args(args, use_default=use_default)
    from bupose.inference.onnx_backend import load_exported

    path = onnx_file(args, use_default)
    model = load_exported(path)
    if model.meta is None:
        raise ConfigError(f"{path}: exported without model metadata (spec, settings)")
    return model


def wants_stream(args: argparse.Namespace) -> bool:
    """True when this module's loop must run (module docstring)."""
    from bupose.inference.video import needs_streaming

    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (getattr(args, "batch", 1) != 1 or getattr(args, "track", False) or world > 1
            or needs_streaming(args.images))


def run_stream(args: argparse.Namespace) -> int:
    from bupose.cli.infer_cmd import build_predictor
    from bupose.inference.video import expand_sources
    from bupose.models import model_family

    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    sources = expand_sources(args.images)
    videos = [s for s in sources if s.kind != "image"]
    if videos and len(videos) != len(sources):
        raise ConfigError("give either images or videos / webcams in one run, not both")
    if args.track and not videos:
        raise ConfigError("--track needs a video or webcam input")
    model = infer_model(args)
    family = model_family(model)
    if str(args.device) == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"  # one GPU per process
    model.to(args.device).eval()
    if family == "ae":
        predictor = build_predictor(args, model)
        if videos:
            return _run_videos(args, _ae_predict(args, predictor), predictor.spec, videos)
        return _run_images(args, predictor, [s.path for s in sources])
    if family == "offsets" and videos:  # SimplePose: its own predictor, one frame at a time
        from bupose.cli.infer_offsets import build_offset_predictor

        offsets = build_offset_predictor(args, model)
        return _run_videos(args, _single_predict(args, offsets), model.meta.spec, videos)
    raise ConfigError(f"{model.meta.name} is a {family!r} model: --batch and torchrun runs take "
                      "AE models (HigherHRNet / HAE), videos AE and SimplePose models")


def _ae_predict(args: argparse.Namespace, predictor: Any) -> Any:
    """frames -> Poses per frame: batched maps, the predictor's decoder, --min-score."""
    from bupose.cli.infer_cmd import keep_confident
    from bupose.inference.batching import batch_maps

    def predict(frames: list[Any]) -> list[Any]:
        return [keep_confident(predictor.decode(m), args.min_score)
                for m in batch_maps(predictor, frames)]

    return predict


def _single_predict(args: argparse.Namespace, predictor: Any) -> Any:
    """frames -> Poses per frame with an image -> Poses predictor, one frame at a time."""
    from bupose.cli.infer_cmd import keep_confident

    def predict(frames: list[Any]) -> list[Any]:
        return [keep_confident(predictor(frame), args.min_score) for frame in frames]

    return predict


def _run_videos(args: argparse.Namespace, predict: Any, spec: Any, sources: list[Any]) -> int:
    from bupose.inference.track import PoseTracker
    from bupose.inference.video import process_video
    from bupose.utils.io import atomic_write_json

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("videos and webcams run in one process (not under torchrun)")
    for flag in ("save_maps", "show_maps", "annotations"):
        if getattr(args, flag, None):
            raise ConfigError(f"--{flag.replace('_', '-')} takes images, not videos")
    entries: list[dict[str, Any]] = []
    start = time.perf_counter()
    for source in sources:
        tracker = None
        if args.track:
            tracker = PoseTracker(spec.sigmas, args.track_oks, args.track_timeout)
        draw = args.draw / f"{source.stem}.mp4" if args.draw else None
        entries.extend(process_video(source, predict, spec, batch=args.batch,
                                     max_frames=args.max_frames, draw=draw, tracker=tracker))
        if draw is not None:
            print(f"annotated video: {draw}", file=sys.stderr)
    if args.json:
        atomic_write_json(args.json, entries)
    people = sum(len(e["people"]) for e in entries)
    print(f"{len(entries)} frames, {people} people, {_rate(len(entries), start)}"
          + (f"; results: {args.json}" if args.json else ""), file=sys.stderr)
    return 0


def _run_images(args: argparse.Namespace, predictor: Any, images: list[Path]) -> int:
    from bupose.cli.infer_cmd import _check_unique_stems, image_ids
    from bupose.engine import dist
    from bupose.utils.io import read_json

    gt = read_json(args.annotations, "annotation file") if args.annotations else None
    ids = image_ids(images, gt, args.annotations)
    if args.save_maps or args.draw or getattr(args, "show_maps", None):
        _check_unique_stems(images)
    info = dist.init_distributed("cpu" if str(args.device) == "cpu" else "auto")
    try:
        start = time.perf_counter()
        mine = list(range(info.rank, len(images), info.world_size))
        try:
            results, skipped = _predict_images(args, predictor, images, ids, mine, info.is_main)
            failure = None
        except BuposeError as e:  # every rank must reach the gather, then all stop together
            if not info.distributed:
                raise
            results, skipped, failure = {}, [], e
        gathered = dist.all_gather_object((results, skipped, failure))
        errors = [g[2] for g in gathered if g[2] is not None]
        if errors:
            raise errors[0]
        status = _finish(args, predictor, images, ids, gathered, gt, info.is_main)
        if info.is_main:
            print(f"{_rate(len(images), start, 'images')} over {info.world_size} process"
                  f"{'es' if info.world_size > 1 else ''}", file=sys.stderr)
        dist.barrier()  # rank 0 has written the results file
        return status
    finally:
        dist.cleanup()


def _rate(count: int, start: float, unit: str = "frames") -> str:
    seconds = max(time.perf_counter() - start, 1e-9)
    return f"{count} {unit} in {seconds:.1f} s ({count / seconds:.2f} {unit}/s)"


def _predict_images(args: argparse.Namespace, predictor: Any, images: list[Path],
                    ids: list[int], mine: list[int], show: bool
                    ) -> tuple[dict[int, list[dict[str, Any]]], list[str]]:
    """COCO entries per image index for the images ``mine`` (batched), and the skipped files."""
    from tqdm import tqdm

    from bupose.cli.infer_files import read_or_skip
    from bupose.inference.batching import batch_key, batch_maps, group_batches

    skipped: list[str] = []
    results: dict[int, list[dict[str, Any]]] = {}

    def read() -> Any:
        for i in mine:
            image = read_or_skip(images[i], skipped, args.strict)
            if image is not None:
                yield i, image

    with tqdm(total=len(mine), unit="img", desc="infer", disable=not show) as bar:
        groups = group_batches(read(), lambda item: batch_key(predictor, item[1]), args.batch)
        for group in groups:
            maps = batch_maps(predictor, [image for _, image in group])
            for (i, image), m in zip(group, maps):
                results[i] = _outputs(args, predictor, images[i], ids[i], image, m)
            bar.update(len(group))
    return results, skipped


def _outputs(args: argparse.Namespace, predictor: Any, path: Path, image_id: int,
             image: Any, maps: Any) -> list[dict[str, Any]]:
    """One image's files (--save-maps, --draw, --show-maps) and COCO entries, as infer_cmd."""
    import numpy as np

    from bupose.cli.infer_cmd import _draw, keep_confident, save_maps

    if args.save_maps:
        arrays = maps.to_numpy()
        arrays.update(image_id=np.int64(image_id), file_name=np.str_(path.name),
                      settings=np.str_(json.dumps(predictor.settings.to_meta())))
        save_maps(args.save_maps / f"{path.stem}.npz", arrays)
    poses = keep_confident(predictor.decode(maps), args.min_score)
    if args.draw:
        _draw(args.draw / f"{path.stem}.jpg", image, poses, predictor.spec)
    if getattr(args, "show_maps", None):
        from bupose.cli.infer_files import show_maps

        show_maps(args.show_maps, path.stem, image, maps, poses, predictor.spec)
    return poses.to_coco(image_id, file_name=path.name)


def _finish(args: argparse.Namespace, predictor: Any, images: list[Path], ids: list[int],
            gathered: list[Any], gt: Any, is_main: bool) -> int:
    """Merge the ranks' results in input order; rank 0 writes --json and prints the scores."""
    from bupose.cli.infer_cmd import _print_scores
    from bupose.cli.infer_files import check_skipped
    from bupose.evaluation.results import write_coco_results

    merged: dict[int, list[dict[str, Any]]] = {}
    skipped: list[str] = []
    for results, rank_skipped, _ in gathered:
        merged.update(results)
        skipped.extend(rank_skipped)
    check_skipped(skipped, len(images))
    entries = [e for i in sorted(merged) for e in merged[i]]
    if not is_main:
        return 0
    if args.json:
        write_coco_results(args.json, entries)
    print(f"{len(images)} images, {len(entries)} people"
          + (f"; results: {args.json}" if args.json else ""), file=sys.stderr)
    if gt is not None:
        _print_scores(entries, gt, ids, predictor.spec)
    return 0
