"""CAL training targets of one person crop (ALGORITHMS.md §6.3; reference ``draw_dense_reg`` and
``JointsDataset.generate_target``).

Frames: joints arrive in input px (crop pixels, UDP convention: pixel centres at integers);
heatmap coordinates are ``input / feat_stride`` with ``feat_stride = (input - 1) / (heatmap - 1)``
per axis, so input px 0 and w-1 land on heatmap cells 0 and W-1. For a joint at (x*, y*) and a
heatmap cell (u, v), with ``d² = (x* - u)² + (y* - v)²`` computed in float32 as the reference:

* heatmap ``exp(-d² / (2σ²))``, values below ``eps(float32) * max`` set to 0;
* offsets ``((x* - u), (y* - v)) / LOCREF_STDEV``, 0 where ``d² > KPD²``;
  channels ordered x_0, y_0, x_1, y_1, ...;
* ``mask_01 = [d² <= KPD²]``; ``mask_g = exp(-d² / (2 σ_m²)) / σ_m * mask_01``;
* ``target_weight`` = visibility, zeroed when the window ``[mu - t, mu + t + 1)`` with
  ``mu = int(x* + 0.5)``, ``t = int(3σ + 0.5)`` lies entirely outside the map; all maps of a
  joint with weight 0 stay zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CalTargets:
    """Targets of one crop (K joints, heatmap H x W).

    Attributes:
        heatmaps: (K, H, W) float32. offsets: (2K, H, W) float32 in LOCREF_STDEV units.
        mask_01: (K, H, W) float32 0/1. mask_g: (K, H, W) float32 Gaussian offset mask.
        target_weight: (K, 1) float32.
    """

    heatmaps: np.ndarray
    offsets: np.ndarray
    mask_01: np.ndarray
    mask_g: np.ndarray
    target_weight: np.ndarray


def feat_stride(input_size_wh: tuple[int, int], heatmap_size_wh: tuple[int, int]) -> np.ndarray:
    """(2,) float64 input px per heatmap cell, ``(input - 1) / (heatmap - 1)`` per axis (x, y)."""
    return (np.asarray(input_size_wh, np.float64) - 1.0) / (
        np.asarray(heatmap_size_wh, np.float64) - 1.0)


def dense_maps(
    joint_hm: np.ndarray,
    heatmap_size_wh: tuple[int, int],
    sigma: float,
    locref_stdev: float,
    mask_sigma: float,
    kpd: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Maps of one joint at ``joint_hm`` (x*, y*) heatmap px (the reference's ``draw_dense_reg``).

    Returns:
        heatmap (H, W), offsets (2, H, W), mask_01 (H, W), mask_g (H, W), all float32.
    """
    w, h = int(heatmap_size_wh[0]), int(heatmap_size_wh[1])
    off = np.empty((2, h, w), dtype=np.float32)
    off[0] = joint_hm[0] - np.arange(w, dtype=np.float64)[None, :]
    off[1] = joint_hm[1] - np.arange(h, dtype=np.float64)[:, None]
    d2 = np.sum(off * off, axis=0)  # float32
    heat = np.exp(-d2 / np.float32(2 * sigma**2))
    heat[heat < np.finfo(np.float32).eps * heat.max()] = 0
    inside = d2 <= np.float32(kpd**2)
    off /= np.float32(locref_stdev)
    off *= inside[None]
    mask_g = np.float32(1.0 / mask_sigma) * np.exp(-d2 / np.float32(2 * mask_sigma**2))
    mask_g *= inside
    return heat, off, inside.astype(np.float32), mask_g


def window_weight(joint_hm: np.ndarray, heatmap_size_wh: tuple[int, int], sigma: float) -> bool:
    """Whether any of the reference's 3σ window around the joint lies inside the map."""
    t = int(sigma * 3 + 0.5)
    mu_x, mu_y = int(joint_hm[0] + 0.5), int(joint_hm[1] + 0.5)  # truncation toward zero
    w, h = heatmap_size_wh
    return not (mu_x - t >= w or mu_y - t >= h or mu_x + t + 1 <= 0 or mu_y + t + 1 <= 0)


def encode_cal_targets(
    joints_input: np.ndarray,
    visible: np.ndarray,
    input_size_wh: tuple[int, int],
    heatmap_size_wh: tuple[int, int],
    sigma: float,
    locref_stdev: float,
    mask_sigma: float,
    kpd: float,
) -> CalTargets:
    """Targets of one crop.

    Args:
        joints_input: (K, 2) joints in input px (invisible ones may be anything; the reference
            moves them to (0, 0), quirk 9, and gives them weight 0).
        visible: (K,) 0/1 visibility (the reference's ``joints_vis``, v > 1 clipped to 1).
        input_size_wh: crop (w, h). heatmap_size_wh: heatmap (W, H).
        sigma: heatmap Gaussian σ, heatmap px. locref_stdev: offset unit, heatmap px.
        mask_sigma: σ of the Gaussian offset mask. kpd: radius of the offset field, heatmap px.

    Returns:
        CalTargets.
    """
    k = len(joints_input)
    w, h = int(heatmap_size_wh[0]), int(heatmap_size_wh[1])
    stride = feat_stride(input_size_wh, heatmap_size_wh)
    heat = np.zeros((k, h, w), np.float32)
    offsets = np.zeros((2 * k, h, w), np.float32)
    mask_01 = np.zeros((k, h, w), np.float32)
    mask_g = np.zeros((k, h, w), np.float32)
    weight = np.asarray(visible, np.float32).reshape(k, 1).copy()
    for j in range(k):
        joint_hm = np.asarray(joints_input[j, :2], np.float64) / stride
        if not window_weight(joint_hm, (w, h), sigma):
            weight[j] = 0
        if weight[j, 0] > 0.5:
            heat[j], offsets[2 * j:2 * j + 2], mask_01[j], mask_g[j] = dense_maps(
                joint_hm, (w, h), sigma, locref_stdev, mask_sigma, kpd)
    return CalTargets(heat, offsets, mask_01, mask_g, weight)
