"""bupose: bottom-up multi-person human pose estimation.

Public API (more arrives with the model, decoder and engine modules):
``KeypointSpec``, ``get_spec``, ``load_spec``.
"""

from bupose.structures.spec import KeypointSpec, get_spec, load_spec

__version__ = "0.1.0"

__all__ = ["KeypointSpec", "__version__", "get_spec", "load_spec"]
