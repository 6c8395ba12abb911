"""KeypointSpec: the one source of dataset truth (names, flip index, skeleton, OKS sigmas, the
associative-embedding joint order and the HAE keypoint groups).

Values: ALGORITHMS.md §1.1 (COCO, CrowdPose, MPII), §2.5 step 8 (AE joint order), §3.4 (HAE groups);
AIC sigmas and skeleton from the AI Challenger evaluation code and annotation files.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bupose.errors import ConfigError

Groups = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class KeypointSpec:
    """Everything a dataset's keypoints mean.

    Attributes:
        name: short identifier, e.g. "coco17".
        keypoints: K keypoint names, in channel order.
        flip_index: (K,) after a horizontal flip, channel i takes channel flip_index[i].
        skeleton: limbs as (i, j) pairs of 0-based keypoint indices, for drawing.
        sigmas: (K,) OKS sigmas.
        joint_order: order in which AE grouping visits joint types (a permutation of range(K),
            or a prefix-free subset when a reference uses one).
        groups: HAE keypoint group schemes, name -> tuple of groups of keypoint indices.
        default_groups: the scheme used when none is named (a key of ``groups``, or "").
    """

    name: str
    keypoints: tuple[str, ...]
    flip_index: tuple[int, ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    joint_order: tuple[int, ...] = ()
    groups: dict[str, Groups] = field(default_factory=dict)
    default_groups: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "keypoints", tuple(self.keypoints))
        object.__setattr__(self, "flip_index", tuple(int(i) for i in self.flip_index))
        object.__setattr__(self, "skeleton", tuple((int(a), int(b)) for a, b in self.skeleton))
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        order = self.joint_order or tuple(range(len(self.keypoints)))
        object.__setattr__(self, "joint_order", tuple(int(i) for i in order))
        groups = {k: tuple(tuple(int(i) for i in g) for g in v) for k, v in self.groups.items()}
        object.__setattr__(self, "groups", groups)
        self.validate()

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def validate(self) -> None:
        """Raise ConfigError saying what is wrong with this spec."""
        k = self.num_keypoints
        where = f"keypoint spec {self.name!r}"
        if k == 0:
            raise ConfigError(f"{where}: no keypoints")
        if len(set(self.keypoints)) != k:
            raise ConfigError(f"{where}: keypoint names are not unique")
        if len(self.flip_index) != k:
            raise ConfigError(f"{where}: flip_index has {len(self.flip_index)} entries, K = {k}")
        for i, j in enumerate(self.flip_index):
            if not 0 <= j < k:
                raise ConfigError(f"{where}: flip_index[{i}] = {j} is not in [0, {k})")
            if self.flip_index[j] != i:
                raise ConfigError(
                    f"{where}: flip_index is not an involution: flip[{i}] = {j} "
                    f"but flip[{j}] = {self.flip_index[j]}"
                )
        if len(self.sigmas) != k:
            raise ConfigError(f"{where}: {len(self.sigmas)} sigmas for K = {k} keypoints")
        if any(not s > 0 for s in self.sigmas):
            raise ConfigError(f"{where}: sigmas must be positive")
        for a, b in self.skeleton:
            if not (0 <= a < k and 0 <= b < k):
                raise ConfigError(
                    f"{where}: skeleton limb ({a}, {b}) has an index outside [0, {k})"
                )
        order = self.joint_order
        if len(set(order)) != len(order) or any(not 0 <= i < k for i in order):
            raise ConfigError(f"{where}: joint_order must list distinct indices in [0, {k})")
        for scheme, groups in self.groups.items():
            for g in groups:
                if not g or any(not 0 <= i < k for i in g):
                    raise ConfigError(
                        f"{where}: group scheme {scheme!r} has group {list(g)} with an index "
                        f"outside [0, {k}) or is empty"
                    )
        if self.default_groups and self.default_groups not in self.groups:
            raise ConfigError(f"{where}: default_groups {self.default_groups!r} is not in groups")

    def get_groups(self, scheme: str | None = None) -> Groups:
        """The HAE groups of ``scheme`` (default ``default_groups``, else one group per joint)."""
        scheme = scheme or self.default_groups
        if not scheme:
            return tuple((i,) for i in range(self.num_keypoints))
        if scheme not in self.groups:
            raise ConfigError(
                f"keypoint spec {self.name!r} has no group scheme {scheme!r} "
                f"(known: {', '.join(sorted(self.groups)) or 'none'})"
            )
        return self.groups[scheme]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["skeleton"] = [list(p) for p in self.skeleton]
        d["groups"] = {k: [list(g) for g in v] for k, v in self.groups.items()}
        for key in ("keypoints", "flip_index", "sigmas", "joint_order"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "spec") -> KeypointSpec:
        """Build from a dict (YAML/JSON form); unknown or missing keys raise ConfigError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown keys {unknown} (known: {sorted(known)})")
        missing = [k for k in ("name", "keypoints", "flip_index", "sigmas") if k not in d]
        if missing:
            raise ConfigError(f"{source}: missing keys {missing}")
        try:
            return cls(**{**{"skeleton": ()}, **d})
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: malformed spec: {e}") from None


def _pairs_to_flip(k: int, pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    flip = list(range(k))
    for a, b in pairs:
        flip[a], flip[b] = b, a
    return tuple(flip)


COCO17 = KeypointSpec(
    name="coco17",
    keypoints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107,
        0.107, 0.087, 0.087, 0.089, 0.089,
    ),
    joint_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
    groups={
        # HAE reference scheme for COCO (ALGORITHMS.md §3.4).
        "hierarchical_coco": (
            (0, 1, 2, 3, 4, 5, 6), (11, 12), (7,), (8,), (9,), (10,), (13,), (14,), (15,), (16,),
        ),
        # COCO counterparts of the CrowdPose spatial-prior / mutual-information schemes (ours:
        # the reference defines these for CrowdPose only).
        "spatial_prior_coco": (
            (0, 1, 2, 3, 4), (5, 6, 11, 12), (7, 9), (8, 10), (13, 15), (14, 16),
        ),
        "mutual_information_coco": (
            (0, 1, 2, 3, 4, 5, 6), (11, 12), (7, 9), (8, 10), (13, 15), (14, 16),
        ),
    },
    default_groups="hierarchical_coco",
)

CROWDPOSE14 = KeypointSpec(
    name="crowdpose14",
    keypoints=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
        "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "top_head", "neck",
    ),
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    skeleton=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7),
        (6, 8), (8, 10), (7, 9), (9, 11),
    ),
    sigmas=(
        0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
        0.079, 0.079,
    ),
    # The official code truncates the COCO order to 14 entries (ALGORITHMS.md §2.5 step 8).
    joint_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13),
    groups={
        "hierarchical_crowdpose": (
            (0, 1, 12, 13), (6, 7), (2,), (3,), (4,), (5,), (8,), (9,), (10,), (11,),
        ),
        "spatial_prior_crowdpose": ((12, 13), (0, 1, 6, 7), (2, 4), (3, 5), (8, 10), (9, 11)),
        "mutual_information_crowdpose": (
            (0, 1, 12, 13), (6, 7), (2, 4), (3, 5), (8, 10), (9, 11),
        ),
    },
    default_groups="hierarchical_crowdpose",
)

MPII16 = KeypointSpec(
    name="mpii16",
    keypoints=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis",
        "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder",
        "left_shoulder", "left_elbow", "left_wrist",
    ),
    flip_index=_pairs_to_flip(16, [(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)]),
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (8, 12),
        (12, 11), (11, 10), (8, 13), (13, 14), (14, 15),
    ),
    sigmas=(
        0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026, 0.062, 0.072,
        0.179, 0.179, 0.072, 0.062,
    ),
    joint_order=(9, 8, 7, 12, 13, 6, 2, 3, 11, 14, 10, 15, 1, 4, 0, 5),
)

AIC14 = KeypointSpec(
    name="aic14",
    keypoints=(
        "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
        "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
        "left_ankle", "head_top", "neck",
    ),
    flip_index=_pairs_to_flip(14, [(0, 3), (1, 4), (2, 5), (6, 9), (7, 10), (8, 11)]),
    skeleton=(
        (2, 1), (1, 0), (0, 13), (13, 3), (3, 4), (4, 5), (8, 7), (7, 6), (6, 9), (9, 10),
        (10, 11), (12, 13), (0, 6), (3, 9),
    ),
    sigmas=(
        0.01388152, 0.01515228, 0.01057665, 0.01417709, 0.01497891, 0.01402144, 0.03909642,
        0.03686941, 0.01981803, 0.03843971, 0.03412318, 0.02415081, 0.01291456, 0.01236173,
    ),
    joint_order=(12, 13, 0, 3, 6, 9, 1, 4, 2, 5, 7, 10, 8, 11),
)

OCHUMAN17 = dataclasses.replace(COCO17, name="ochuman17")

BUILTIN_SPECS: dict[str, KeypointSpec] = {
    s.name: s for s in (COCO17, CROWDPOSE14, MPII16, AIC14, OCHUMAN17)
}
_ALIASES = {"coco": "coco17", "crowdpose": "crowdpose14", "mpii": "mpii16", "aic": "aic14",
            "ochuman": "ochuman17"}


def get_spec(name: str) -> KeypointSpec:
    """A built-in spec by name: coco17 (coco), crowdpose14, mpii16, aic14, ochuman17."""
    key = _ALIASES.get(name, name)
    if key not in BUILTIN_SPECS:
        names = sorted([*BUILTIN_SPECS, *_ALIASES])
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown keypoint spec {name!r}{hint} (built in: {', '.join(names)})")
    return BUILTIN_SPECS[key]


def load_spec(name_or_path: str | os.PathLike) -> KeypointSpec:
    """A built-in spec by name, or a spec read from a YAML or JSON file (any K)."""
    path = Path(name_or_path)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        return get_spec(str(name_or_path))
    if not path.is_file():
        raise ConfigError(f"{path}: keypoint spec file not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as e:  # yaml.YAMLError or json.JSONDecodeError
        raise ConfigError(f"{path}: malformed spec file: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a spec file must hold a mapping of keys to values")
    return KeypointSpec.from_dict(data, source=str(path))
