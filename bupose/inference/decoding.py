"""What the AE decoders take and give for one image, without torch: ``DecoderInputs`` (the
aggregated maps, as ``--save-maps`` stores them) and ``decode_maps`` (group them into people and
back-project to the image). Shared by ``Predictor`` (PyTorch) and ``OnnxPredictor``
(onnxruntime + numpy), whose maps are torch tensors and numpy arrays respectively.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bupose.inference.poses import Poses
from bupose.inference.tta import MapArray


@dataclass
class DecoderInputs:
    """The aggregated maps of one image, as the decoder sees them (what ``--save-maps`` stores).

    Attributes:
        heatmaps: (K, h, w) float32 aggregated heatmaps (h, w = base size with PROJECT2IMAGE), a
            torch tensor (``Predictor``) or a numpy array (``OnnxPredictor``).
        tags: (K, h, w, L) float32 tags (L = tag dim x passes), or None for a model without tags.
        center: (2,) resize centre (x, y) in image pixels, or None (then results stay in map
            pixels).
        scale: (2,) resize box (w, h) in 200-px units, or None.
        base_size: (W, H) network input size at scale 1, or None.
    """

    heatmaps: MapArray
    tags: MapArray | None
    center: np.ndarray | None = None
    scale: np.ndarray | None = None
    base_size: tuple[int, int] | None = None

    def to_numpy(self) -> dict[str, np.ndarray]:
        """npz-ready arrays: heatmaps, tags (when present), center, scale, base_size (when set)."""
        out = {"heatmaps": as_float32(self.heatmaps)}
        if self.tags is not None:
            out["tags"] = as_float32(self.tags)
        if self.center is not None and self.scale is not None:
            out["center"] = np.asarray(self.center, dtype=np.float64)
            out["scale"] = np.asarray(self.scale, dtype=np.float64)
        if self.base_size is not None:
            out["base_size"] = np.asarray(self.base_size, dtype=np.int64)
        return out


def decode_maps(
    inputs: DecoderInputs, decoder: str, params: Any, joint_order: Sequence[int]
) -> Poses:
    """Group one image's aggregated maps into people.

    Args:
        inputs: the decoder inputs; with ``center`` and ``scale`` the poses are back-projected to
            the image (official ``get_final_preds``, map size = the heatmaps' (w, h)), otherwise
            they are returned in map pixels.
        decoder: a DECODERS name ("ae", "hae").
        params: the decoder's ``GroupingParams``.
        joint_order: the spec's AE joint order.

    Returns:
        Poses: keypoints (P, K, 3) [x, y, heatmap value], scores (P,), tags (P, K, L).
    """
    from bupose.decoders import GroupingInputs, decode_grouping, grouping_decoder

    if inputs.tags is None:
        raise ValueError(f"decoder {decoder!r} needs tag maps; the model produced none")
    maps = GroupingInputs(inputs.heatmaps, inputs.tags, tuple(joint_order))
    grouped, scores = decode_grouping(grouping_decoder(decoder), maps, params)
    grouped = np.asarray(grouped, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    k = inputs.heatmaps.shape[0]
    if len(grouped) == 0:
        return Poses.empty(k)
    keypoints = grouped
    if inputs.center is not None and inputs.scale is not None:
        from bupose.inference.project import back_project

        map_wh = (int(inputs.heatmaps.shape[-1]), int(inputs.heatmaps.shape[-2]))
        keypoints = np.asarray(back_project(grouped, inputs.center, inputs.scale, map_wh))
    return Poses(keypoints[..., :3], scores, tags=grouped[..., 3:])


def as_float32(maps: MapArray) -> np.ndarray:
    """A float32 numpy copy of a torch tensor (any device) or an array."""
    if hasattr(maps, "detach"):
        maps = maps.detach().cpu().numpy()
    return np.asarray(maps).astype(np.float32)


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless ``image`` is an (H, W, 3) uint8 array."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
