"""Plain data types: keypoint specifications and 2x3 affine geometry (numpy only)."""

from bupose.structures.spec import BUILTIN_SPECS, KeypointSpec, get_spec, load_spec

__all__ = ["BUILTIN_SPECS", "KeypointSpec", "get_spec", "load_spec"]
