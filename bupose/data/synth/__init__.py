"""Built-in synthetic crowds: procedurally drawn articulated people on the COCO-17 skeleton,
written as a COCO keypoint set with a CrowdPose crowdIndex per image.

``write_synth(out_dir, num_images, seed, SceneConfig(...))`` writes the set;
``generate_scene(rng, cfg)`` draws one annotated image in memory.
"""

from bupose.data.synth.crowd_index import bucket_counts, crowd_bucket, crowd_index
from bupose.data.synth.scene import PersonAnnotation, Scene, SceneConfig, generate_scene
from bupose.data.synth.stats import format_stats, keypoint_stats
from bupose.data.synth.writer import dataset_paths, write_synth

__all__ = [
    "PersonAnnotation",
    "Scene",
    "SceneConfig",
    "bucket_counts",
    "crowd_bucket",
    "crowd_index",
    "dataset_paths",
    "format_stats",
    "generate_scene",
    "keypoint_stats",
    "write_synth",
]
