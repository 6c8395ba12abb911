"""Top-down predictor: person boxes in, poses out — the official CAL test path (ALGORITHMS.md
§6.6; reference ``tools/test.py`` -> ``core/function.py:validate``).

    image (H,W,3) uint8 RGB, boxes
      -> center/scale per box (aspect fixed to the input's w/h, x1.25; GT boxes cleaned first,
         detection boxes raw: reference quirk 11; MPII: the annotation's centre/scale)
      -> UDP crop (``bupose.data.topdown.crop``) -> normalise -> model on batches of crops
         (+ the horizontally flipped crops)      = TopDownMaps (what ``--save-maps`` stores)
      -> ``bupose.decoders.cal.decode_cal``: flip fusion, argmax + offset, back-projection,
         rescoring, OKS-NMS                      -> Poses in image pixels
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bupose.decoders.cal import CalDecoded, CalParams, decode_cal
from bupose.inference.decoding import check_image
from bupose.inference.poses import Poses
from bupose.structures.spec import KeypointSpec

# Official TEST / DATASET values of the W32-64x48 yaml, used when the model's meta has none.
DEFAULT_TEST = {"flip_test": True, "locref_stdev": 1.5, "in_vis_thre": 0.2, "oks_thre": 0.9,
                "image_thre": 0.0}
MPII_CENTER_SHIFT = 15.0  # the reference moves an MPII centre down by 15 * scale px
BOX_PADDING = 1.25


@dataclass
class TopDownMaps:
    """Model outputs for N person boxes (the decoder's inputs; ``--save-maps`` keys).

    Attributes:
        heatmaps: (N, K, h, w) float32; offsets: (N, 2K, h, w) float32 (x_0, y_0, ...).
        heatmaps_flip, offsets_flip: raw outputs on the flipped crops, or None (no flip test).
        center: (N, 2) float32 image px; scale: (N, 2) float32 in 200-px units.
        box_score: (N,) float64 (1 for ground-truth boxes); image_id: (N,) int64.
    """

    heatmaps: np.ndarray
    offsets: np.ndarray
    heatmaps_flip: np.ndarray | None
    offsets_flip: np.ndarray | None
    center: np.ndarray
    scale: np.ndarray
    box_score: np.ndarray
    image_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.heatmaps)

    def to_numpy(self) -> dict[str, np.ndarray]:
        """npz-ready arrays (flip keys only when present)."""
        out = {"heatmaps": self.heatmaps, "offsets": self.offsets, "center": self.center,
               "scale": self.scale, "box_score": self.box_score, "image_id": self.image_id}
        if self.heatmaps_flip is not None and self.offsets_flip is not None:
            out.update(heatmaps_flip=self.heatmaps_flip, offsets_flip=self.offsets_flip)
        return out

    @classmethod
    def concat(cls, parts: list[TopDownMaps]) -> TopDownMaps:
        """The boxes of several images as one set (in the given order); parts must agree on
        flip."""
        if not parts:
            raise ValueError("nothing to concatenate")
        flip = parts[0].heatmaps_flip is not None
        if any((p.heatmaps_flip is not None) != flip for p in parts):
            raise ValueError("some maps have flip maps and some do not")

        def cat(name: str) -> Any:
            arrays = [getattr(p, name) for p in parts]
            return np.concatenate(arrays) if flip or not name.endswith("_flip") else None

        return cls(*(cat(n) for n in ("heatmaps", "offsets", "heatmaps_flip", "offsets_flip",
                                      "center", "scale", "box_score", "image_id")))


def _test_value(model: torch.nn.Module, key: str) -> Any:
    """A test setting: the model's ``meta.test``, else its released yaml's (registered CAL
    models), else the W32-64x48 yaml's."""
    from bupose.models.official_cal_config import RELEASED_TEST

    meta = getattr(model, "meta", None)
    test = {str(k).lower(): v for k, v in (getattr(meta, "test", None) or {}).items()}
    released = RELEASED_TEST.get(str(getattr(meta, "name", "")), {})
    return test.get(key, released.get(key, DEFAULT_TEST.get(key)))


class TopDownPredictor:
    """Image + person boxes -> Poses with the official CAL test pipeline.

    Args:
        model: ``forward(images (B,3,h,w)) -> (heatmaps (B,K,h/4,w/4), offsets (B,2K,h/4,w/4))``.
        spec: keypoint spec (flip index, OKS sigmas); K must equal the model's.
        input_size_hw: crop (h, w) px; default ``model.meta.input_size``.
        locref_stdev, in_vis_thre, oks_thre, flip: default ``model.meta.test`` (official yaml:
            DATASET.LOCREF_STDEV, TEST.IN_VIS_THRE, TEST.OKS_THRE, TEST.FLIP_TEST), else the
            released yaml of the registered model, else the W32-64x48 yaml's values (1.5, 0.2,
            0.9, True).
        batch_size: crops per forward pass (with flip, the flipped copies join the same pass).
        device: where to run the model (default: the model's device).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        spec: KeypointSpec,
        input_size_hw: tuple[int, int] | None = None,
        locref_stdev: float | None = None,
        in_vis_thre: float | None = None,
        oks_thre: float | None = None,
        flip: bool | None = None,
        batch_size: int = 32,
        device: torch.device | str | None = None,
        readout: str = "offset",
    ) -> None:
        size = input_size_hw or getattr(getattr(model, "meta", None), "input_size", None)
        if not isinstance(size, (tuple, list)) or len(size) != 2:
            raise ValueError(f"a top-down model needs an (h, w) input size, got {size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        k = getattr(model, "num_keypoints", spec.num_keypoints)
        if k != spec.num_keypoints:
            raise ValueError(f"the model predicts {k} keypoints but spec {spec.name!r} has "
                             f"{spec.num_keypoints}")
        self.model, self.spec = model, spec
        self.input_size_hw = (int(size[0]), int(size[1]))
        self.params = CalParams(
            float(_pick(locref_stdev, _test_value(model, "locref_stdev"))),
            float(_pick(in_vis_thre, _test_value(model, "in_vis_thre"))),
            float(_pick(oks_thre, _test_value(model, "oks_thre"))),
            readout,
        )
        self.flip = bool(_pick(flip, _test_value(model, "flip_test")))
        self.batch_size = int(batch_size)
        if device is None:
            first = next(iter(model.parameters()), None)
            device = first.device if first is not None else "cpu"
        self.device = torch.device(device)

    @property
    def aspect(self) -> float:
        """Input w / h: the aspect every box is enlarged to."""
        return self.input_size_hw[1] / self.input_size_hw[0]

    def boxes_to_center_scale(
        self, boxes: np.ndarray, image_wh: tuple[int, int] | None = None, clean: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) xywh image px -> center (N, 2), scale (N, 2) float32 (reference ``_box2cs``);
        ``clean`` applies the ground-truth clean-up (needs ``image_wh``)."""
        from bupose.data.topdown import box_to_center_scale

        out = [box_to_center_scale(b.tolist(), self.aspect, BOX_PADDING, clean, image_wh)
               for b in np.asarray(boxes, np.float64).reshape(-1, 4)]
        if not out:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        return (np.stack([c for c, _ in out]).astype(np.float32),
                np.stack([s for _, s in out]).astype(np.float32))

    def crops(self, image: np.ndarray, center: np.ndarray, scale: np.ndarray) -> torch.Tensor:
        """(N, 3, h, w) float32 normalised UDP crops (the reference's test inputs)."""
        from bupose.data.topdown import crop
        from bupose.data.transforms import normalize

        h, w = self.input_size_hw
        inputs = [normalize(crop(image, c, s, (w, h))) for c, s in zip(center, scale)]
        if not inputs:
            return torch.zeros((0, 3, h, w))
        return torch.from_numpy(np.stack(inputs))

    @torch.inference_mode()
    def forward(self, inputs: torch.Tensor) -> tuple[np.ndarray, ...]:
        """Batched forward of (N, 3, h, w) crops: heatmaps, offsets and, with flip, the raw
        outputs on ``inputs.flip(3)`` (each (N, C, h/4, w/4) float32 numpy)."""
        outs: list[list[np.ndarray]] = [[], [], [], []]
        for start in range(0, len(inputs), self.batch_size):
            batch = inputs[start:start + self.batch_size].to(self.device)
            n = len(batch)
            if self.flip:
                batch = torch.cat([batch, batch.flip(3)])
            heatmaps, offsets = self.model(batch)[:2]
            pieces = [heatmaps[:n], offsets[:n]]
            if self.flip:
                pieces += [heatmaps[n:], offsets[n:]]
            for acc, t in zip(outs, pieces):
                acc.append(t.float().cpu().numpy())
        if len(inputs) == 0:
            return self._empty_outputs()
        return tuple(np.concatenate(acc) for acc in outs if acc)

    def _empty_outputs(self) -> tuple[np.ndarray, ...]:
        h, w = self.input_size_hw
        k = self.spec.num_keypoints
        hm, off = np.zeros((0, k, h // 4, w // 4), np.float32), np.zeros((0, 2 * k, h // 4, w // 4),
                                                                         np.float32)
        return (hm, off, hm, off) if self.flip else (hm, off)

    def maps_for(
        self, image: np.ndarray, center: np.ndarray, scale: np.ndarray,
        box_score: np.ndarray | None = None, image_id: int = 0,
    ) -> TopDownMaps:
        """The model's maps for boxes given as center (N, 2) / scale (N, 2)."""
        check_image(image)
        center = np.asarray(center, np.float32).reshape(-1, 2)
        scale = np.asarray(scale, np.float32).reshape(-1, 2)
        outs = self.forward(self.crops(image, center, scale))
        return self._assemble(outs, center, scale, box_score, image_id)

    def _assemble(
        self, outs: Sequence[np.ndarray], center: np.ndarray, scale: np.ndarray,
        box_score: np.ndarray | None, image_id: int,
    ) -> TopDownMaps:
        n = len(center)
        score = np.ones(n) if box_score is None else np.asarray(box_score, np.float64)
        flipped = outs[2:] if self.flip else (None, None)
        return TopDownMaps(outs[0], outs[1], flipped[0], flipped[1], center, scale,
                           score.reshape(n).astype(np.float64), np.full(n, image_id, np.int64))

    def maps_stream(
        self,
        items: Iterable[tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, int]],
    ) -> Iterator[tuple[Any, TopDownMaps]]:
        """Maps of many images, the crops of consecutive images sharing forward passes (useful
        when images hold fewer people than ``batch_size``).

        Args:
            items: (key, image (H, W, 3) uint8 RGB, center (N, 2), scale (N, 2) (e.g. from
                ``boxes_to_center_scale``), box scores (N,) or None, image id).

        Yields:
            (key, TopDownMaps) in input order, once ``batch_size`` crops are waiting (and at the
            end); the maps equal ``maps`` of each image up to float rounding.
        """
        pending: list[tuple[Any, torch.Tensor, np.ndarray, np.ndarray, Any, int]] = []
        waiting = 0
        for key, image, center, scale, scores, image_id in items:
            check_image(image)
            center = np.asarray(center, np.float32).reshape(-1, 2)
            scale = np.asarray(scale, np.float32).reshape(-1, 2)
            pending.append((key, self.crops(image, center, scale), center, scale, scores,
                            image_id))
            waiting += len(center)
            if waiting >= self.batch_size:
                yield from self._flush(pending)
                pending, waiting = [], 0
        yield from self._flush(pending)

    def _flush(self, pending: list[tuple]) -> Iterator[tuple[Any, TopDownMaps]]:
        if not pending:
            return
        outs = self.forward(torch.cat([crops for _, crops, *_ in pending]))
        start = 0
        for key, crops, center, scale, scores, image_id in pending:
            part = [o[start:start + len(crops)] for o in outs]
            start += len(crops)
            yield key, self._assemble(part, center, scale, scores, image_id)

    def maps(
        self, image: np.ndarray, boxes: np.ndarray, box_scores: np.ndarray | None = None,
        image_id: int = 0, clean: bool = False,
    ) -> TopDownMaps:
        """The model's maps for (N, 4) xywh boxes (``clean``: ground-truth boxes)."""
        check_image(image)
        size = (image.shape[1], image.shape[0])
        center, scale = self.boxes_to_center_scale(boxes, size, clean)
        return self.maps_for(image, center, scale, box_scores, image_id)

    def decode(self, maps: TopDownMaps) -> CalDecoded:
        """Official decoding of the maps (flip fusion when the flip maps are present)."""
        return decode_cal(maps.heatmaps, maps.offsets, maps.center, maps.scale, maps.box_score,
                          maps.image_id, maps.heatmaps_flip, maps.offsets_flip, self.spec,
                          self.params)

    def __call__(
        self, image: np.ndarray, boxes: np.ndarray, box_scores: np.ndarray | None = None,
        clean: bool = False,
    ) -> Poses:
        """(H, W, 3) uint8 RGB image, (N, 4) xywh person boxes (image px) and their scores
        (default 1) -> Poses after rescoring and OKS-NMS, in the NMS keep order.

        ``clean``: the boxes are ground-truth boxes (reference clean-up); detections are raw.
        """
        return poses_of(self.decode(self.maps(image, boxes, box_scores, clean=clean)))

    def predict_sample(self, sample: Any, nms: bool | None = None) -> Poses:
        """Poses for the ground-truth boxes of a ``bupose.data.sample.Sample``.

        COCO-style samples: the persons with at least one labelled keypoint and a positive area,
        boxes cleaned as the reference does, box score 1, then rescoring and OKS-NMS. MPII
        samples (``sample.centers`` set): the reference's centre/scale of each annotated person
        (``mpii_center_scale``) and, as its MPII evaluation, no NMS: one pose per person, in
        order.
        """
        return next(iter(self.predict_samples([sample], nms)))

    def predict_samples(self, samples: Iterable[Any], nms: bool | None = None) -> Iterator[Poses]:
        """``predict_sample`` of each sample, in order, the crops of consecutive samples sharing
        forward passes (``maps_stream``)."""

        def items() -> Iterator[tuple]:
            for sample in samples:
                center, scale = self.sample_boxes(sample)
                yield sample, sample.image, center, scale, None, int(sample.image_id)

        for sample, maps in self.maps_stream(items()):
            decoded = self.decode(maps)
            mpii = sample.centers is not None and sample.scales is not None
            use_nms = (not mpii) if nms is None else nms
            yield poses_of(decoded) if use_nms else Poses(decoded.keypoints, decoded.scores)

    def sample_boxes(self, sample: Any) -> tuple[np.ndarray, np.ndarray]:
        """center, scale (N, 2) of a sample's ground-truth persons (``predict_sample``)."""
        if sample.centers is not None and sample.scales is not None:
            return mpii_center_scale(sample.centers, sample.scales)
        boxes = gt_boxes(sample.keypoints, sample.areas, sample.bboxes, sample.size_wh)
        return self.boxes_to_center_scale(boxes)


def gt_boxes(
    keypoints: np.ndarray, areas: np.ndarray, bboxes: np.ndarray, image_wh: tuple[int, int]
) -> np.ndarray:
    """The cleaned ground-truth boxes the reference tests on, in annotation order.

    A person counts when its area is > 0, some keypoint value is non-zero (the reference's
    ``max(keypoints) > 0``) and its cleaned box (``bupose.data.topdown.clean_box``) is not empty.

    Args:
        keypoints: (N, K, 3); areas: (N,); bboxes: (N, 4) xywh image px; image_wh: (W, H).

    Returns:
        (M, 4) float64 cleaned xywh boxes.
    """
    from bupose.data.topdown import clean_box

    kps = np.asarray(keypoints).reshape(len(keypoints), -1)
    labelled = np.abs(kps).max(axis=1, initial=0) > 0
    out = []
    for box, area, ok in zip(np.asarray(bboxes, np.float64), np.asarray(areas), labelled):
        cleaned = clean_box(box, image_wh) if ok and area > 0 else None
        if cleaned is not None:
            out.append(cleaned)
    return np.asarray(out, np.float64).reshape(-1, 4)


def mpii_center_scale(
    centers: np.ndarray, scales: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """MPII test boxes as the reference derives them from the annotation.

    Args:
        centers: (N, 2) 0-based image px (the annotation's ``center`` minus 1).
        scales: (N,) person scale (height / 200 px).

    Returns:
        center (N, 2) float32 moved down by 15 * scale px; scale (N, 2) float32 = 1.25 * scale
        for both sides (no aspect fix: the MPII inputs are square).
    """
    s = np.asarray(scales, np.float64).reshape(-1)
    c = np.asarray(centers, np.float64).reshape(-1, 2).copy()
    given = c[:, 0] != -2.0  # the reference skips persons whose (1-based) centre x is -1
    c[given, 1] += MPII_CENTER_SHIFT * s[given]
    scale = np.stack([s, s], axis=1) * np.where(given, BOX_PADDING, 1.0)[:, None]
    return c.astype(np.float32), scale.astype(np.float32)


def poses_of(decoded: CalDecoded) -> Poses:
    """The kept people of a decoding (results order) as Poses (keypoints in image px)."""
    kept = decoded.kept
    return Poses(decoded.keypoints[kept], decoded.scores[kept])


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value

