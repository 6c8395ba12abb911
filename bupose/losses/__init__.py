"""Training losses: masked heatmap MSE, associative embedding (AE) and hierarchical AE (HAE).

``PoseLoss(layout, ae="ae" | "hae" | "none", ...)`` is what training calls:
``terms = loss(outputs, targets)`` gives a dict of named, weighted, batch-averaged float32 terms.
The functional pieces (per-image, unweighted) are exported too.
"""

from bupose.losses.ae import AELossTerms, ae_loss, gather_tags, masked_pull, push_loss
from bupose.losses.hae import (
    HAELossTerms,
    focal_pull,
    gamma_weights,
    group_matrix,
    hae_loss,
    iqr_weights,
)
from bupose.losses.heatmap import heatmap_loss
from bupose.losses.pose_loss import PoseLoss

__all__ = [
    "AELossTerms",
    "HAELossTerms",
    "PoseLoss",
    "ae_loss",
    "focal_pull",
    "gamma_weights",
    "gather_tags",
    "group_matrix",
    "hae_loss",
    "heatmap_loss",
    "iqr_weights",
    "masked_pull",
    "push_loss",
]
