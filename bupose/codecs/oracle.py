"""Oracle network outputs: the heatmaps and tag maps a perfect associative-embedding model would
produce for known people, with controllable tag noise.

They let the grouping decoders be compared and demonstrated without a trained network: the
heatmaps are the training targets (so every peak is right) and only the tags are imperfect, which
is exactly what separates grouping methods in crowded scenes.
"""

from __future__ import annotations

import numpy as np

from bupose.codecs.gaussian import gaussian_patch, peak_cells


def render_oracle_maps(
    keypoints: np.ndarray,
    size_wh: tuple[int, int],
    rng: np.random.Generator,
    sigma: float = 2.0,
    person_tag_spread: float = 4.0,
    joint_tag_noise: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps and 1-D tag maps for known people.

    Args:
        keypoints: (N, K, 3) [x, y, v] in map pixels; joints with v > 0 are drawn.
        size_wh: map (w, h).
        rng: source of the tags.
        sigma: Gaussian sigma in map pixels.
        person_tag_spread: person tags are drawn uniformly from [0, spread * N): a lower spread
            puts people closer together in tag space.
        joint_tag_noise: standard deviation of each joint's deviation from its person's tag.

    Returns:
        heatmaps: (K, h, w) float32, the Gaussian targets (max over people).
        tags: (K, h, w, 1) float32: inside a person's Gaussian the tag of that joint of that
            person (the person with the larger Gaussian value wins where they overlap), elsewhere
            uniform background noise in the person tag range.
    """
    kps = np.asarray(keypoints, dtype=np.float64).reshape(len(keypoints), -1, 3)
    num_people, num_joints = kps.shape[:2]
    w, h = size_wh
    spread = person_tag_spread * max(num_people, 1)
    person_tags = rng.uniform(0.0, spread, size=num_people)
    joint_tags = person_tags[:, None] + rng.normal(0.0, joint_tag_noise, (num_people, num_joints))
    heatmaps = np.zeros((num_joints, h, w), np.float32)
    tags = rng.uniform(0.0, spread, size=(num_joints, h, w)).astype(np.float32)
    patch = gaussian_patch(sigma).astype(np.float32)
    half = patch.shape[0] // 2
    cells, valid = peak_cells(kps, size_wh)
    for p, k in zip(*np.nonzero(valid)):
        x, y = int(cells[p, k, 0]), int(cells[p, k, 1])
        x0, y0 = max(0, x - half), max(0, y - half)
        x1, y1 = min(w, x + half + 1), min(h, y + half + 1)
        piece = patch[y0 - (y - half): y1 - (y - half), x0 - (x - half): x1 - (x - half)]
        region = heatmaps[k, y0:y1, x0:x1]
        wins = piece > region
        region[wins] = piece[wins]
        tags[k, y0:y1, x0:x1][wins] = joint_tags[p, k]
    return heatmaps, tags[..., None]
