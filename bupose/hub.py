"""Model zoo: every released checkpoint bupose can run, where it comes from, its published score,
and how to get it into the cache.

``--checkpoint zoo:NAME`` / ``--checkpoint https://...`` / ``bupose download NAME`` go through
``resolve_checkpoint``: direct links are downloaded (resumable, SHA-256 checked where known,
``bupose.utils.download``) into ``$BUPOSE_CACHE/checkpoints/NAME/`` (default
``~/.cache/bupose``); links that need a browser (Google Drive folders) are listed with the file
name to place there. HigherHRNet-family entries get a generated official-format experiment YAML
beside the weights (architecture, input size, TEST settings of the published evaluation), which
``load_checkpoint(path, config)`` reads; SimplePose and CAL weights need none.

Published APs: COCO val2017 single scale (HigherHRNet, HAE, fusion: the AP their README reports
for these weights; mmpose: its model-zoo table), CrowdPose test, or COCO val2017 at 64x48 with
person boxes for CAL.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bupose.errors import ConfigError
from bupose.utils.download import DownloadError, download

RESOURCES = Path(__file__).resolve().parent / "resources"
DEFAULT_MODEL = RESOURCES / "default_model.safetensors"

_MM = "https://download.openmmlab.com/mmpose/bottom_up/"
_HH_DRIVE = "https://drive.google.com/drive/folders/1X9-TzWpwbX2zQf2To8lB-ZQHMYviYYh6"
_HAE_DRIVE = "https://drive.google.com/drive/folders/1elE8kvlB7ctyslSmjhBGVV2eMPX3-rTN"
_FU_DRIVE = "https://drive.google.com/drive/folders/1MTZMFmaX1vPM8WShD6lPzrdghvcl1FAi"
_OG_DRIVE = "https://drive.google.com/drive/folders/1jG87NBm_wXKgKJh-VLkVkJTIV7vyiz1P"
_CAL_PAGE = "https://github.com/ilovepose/Low-resolution-human-pose"


@dataclass(frozen=True)
class ZooEntry:
    """One released checkpoint.

    Attributes:
        name: what ``zoo:NAME`` and ``bupose download NAME`` take.
        model: the registered bupose model it loads into (``bupose models``).
        dataset: "coco" or "crowdpose" (training set; the keypoint spec follows).
        ap: the published AP (single scale, flip) on ``metric``.
        metric: the evaluation set of ``ap``.
        source: who released it (official, mmpose 0.x, HAE, fusion, SimplePose V2, CAL).
        file_name: the released file's name (the cache keeps it).
        url: direct download link, or None when only a browser can fetch it.
        page: where to fetch it by hand when ``url`` is None (or the release notes).
        sha256: full SHA-256 or a leading prefix (mmpose names carry 8 hex digits); None:
            unknown, not checked.
        decoder: the grouping the published score used ("ae", "hae", "offsets", "cal").
        config: file name of the generated official-format YAML, None when none is needed.
        arch: what ``official_yaml`` builds the config from: width, input_size, deconvs
            (HigherHRNet 1, bottom-up HRNet 0), and optionally blocks (per branch, default 4)
            and modules (stages 2-4, default (1, 4, 3)).
    """

    name: str
    model: str
    dataset: str
    ap: float | None
    metric: str
    source: str
    file_name: str
    url: str | None
    page: str | None = None
    sha256: str | None = None
    decoder: str = "ae"
    config: str | None = None
    arch: dict[str, Any] = field(default_factory=dict)

    @property
    def num_keypoints(self) -> int:
        return 14 if self.dataset == "crowdpose" else 17


def _hh(name: str, dataset: str, width: int, size: int, ap: float | None, source: str,
        file_name: str, url: str | None, page: str | None, decoder: str = "ae",
        model: str | None = None, deconvs: int = 1, config: str | None = None) -> ZooEntry:
    """A HigherHRNet-family entry (official YAML generated from ``width``/``size``)."""
    metric = "CrowdPose test" if dataset == "crowdpose" else "COCO val2017"
    model = model or f"higherhrnet_w{width}_{size}"
    sha = re.search(r"-([0-9a-f]{8})_", file_name)
    cfg = config or f"w{width}_{size}_adam_lr1e-3_{dataset}.yaml"
    return ZooEntry(name, model, dataset, ap, metric, source, file_name, url, page,
                    sha.group(1) if sha else None, decoder, cfg,
                    {"width": width, "input_size": size, "deconvs": deconvs})


ZOO: dict[str, ZooEntry] = {e.name: e for e in (
    # official HigherHRNet (README model zoo: Google Drive / OneDrive; CrowdPose never released)
    _hh("higherhrnet-w32-512-coco", "coco", 32, 512, 0.671, "official HigherHRNet",
        "pose_higher_hrnet_w32_512.pth", None, _HH_DRIVE, config="w32_512_adam_lr1e-3.yaml"),
    _hh("higherhrnet-w32-640-coco", "coco", 32, 640, 0.685, "official HigherHRNet",
        "pose_higher_hrnet_w32_640.pth", None, _HH_DRIVE, config="w32_640_adam_lr1e-3.yaml"),
    _hh("higherhrnet-w48-640-coco", "coco", 48, 640, 0.699, "official HigherHRNet",
        "pose_higher_hrnet_w48_640.pth", None, _HH_DRIVE, config="w48_640_adam_lr1e-3.yaml"),
    # mmpose 0.x bottom-up (associative embedding) model zoo: direct links
    _hh("mmpose-higherhrnet-w32-512-coco", "coco", 32, 512, 0.677, "mmpose 0.x",
        "higher_hrnet32_coco_512x512-8ae85183_20200713.pth",
        _MM + "higher_hrnet32_coco_512x512-8ae85183_20200713.pth", None),
    _hh("mmpose-higherhrnet-w32-640-coco", "coco", 32, 640, 0.686, "mmpose 0.x",
        "higher_hrnet32_coco_640x640-a22fe938_20200712.pth",
        _MM + "higher_hrnet32_coco_640x640-a22fe938_20200712.pth", None),
    _hh("mmpose-higherhrnet-w48-512-coco", "coco", 48, 512, 0.686, "mmpose 0.x",
        "higher_hrnet48_coco_512x512-60fedcbc_20200712.pth",
        _MM + "higher_hrnet48_coco_512x512-60fedcbc_20200712.pth", None,
        model="higherhrnet_w48_640"),
    _hh("mmpose-hrnet-w32-512-coco", "coco", 32, 512, 0.654, "mmpose 0.x",
        "hrnet_w32_coco_512x512-bcb8c247_20200816.pth",
        _MM + "hrnet_w32_coco_512x512-bcb8c247_20200816.pth", None,
        model="hrnet_w32_ae_512", deconvs=0, config="hrnet_w32_512_ae_coco.yaml"),
    _hh("mmpose-hrnet-w48-512-coco", "coco", 48, 512, 0.665, "mmpose 0.x",
        "hrnet_w48_coco_512x512-cf72fcdf_20200816.pth",
        _MM + "hrnet_w48_coco_512x512-cf72fcdf_20200816.pth", None,
        model="hrnet_w32_ae_512", deconvs=0, config="hrnet_w48_512_ae_coco.yaml"),
    _hh("mmpose-higherhrnet-w32-512-crowdpose", "crowdpose", 32, 512, 0.655, "mmpose 0.x",
        "higher_hrnet32_crowdpose_512x512-1aa4a132_20201017.pth",
        _MM + "higher_hrnet32_crowdpose_512x512-1aa4a132_20201017.pth", None),
    # HAE (README: Google Drive), mmpose 0.25 layout, HAE progressive decoding
    _hh("hae-higherhrnet-w32-512-coco", "coco", 32, 512, 0.678, "HAE", "HAE_COCO.pth", None,
        _HAE_DRIVE, decoder="hae"),
    _hh("hae-higherhrnet-w32-512-crowdpose", "crowdpose", 32, 512, 0.676, "HAE",
        "HAE_CrowdPose.pth", None, _HAE_DRIVE, decoder="hae"),
    # CNN-ViT fusion (README: Google Drive); the official w32_512 YAML, DaViT found in the weights
    _hh("fusion-higherhrnet-w32-davit-512-coco", "coco", 32, 512, 0.675, "CNN-ViT fusion",
        "model_best.pth.tar", None, _FU_DRIVE, model="higherhrnet_w32_davit_512",
        config="w32_512_adam_lr1e-3.yaml"),
    # SimplePose V2 / OffsetGuided (README: Google Drive), hourglass-104, long edge 640
    ZooEntry("simplepose-hg104-coco", "simplepose_hg104", "coco", 0.661, "COCO val2017",
             "SimplePose V2", "PoseNet_77_epoch.pth", None, _OG_DRIVE, decoder="offsets"),
    ZooEntry("simplepose-hg104-crowdpose", "simplepose_hg104", "crowdpose", 0.652,
             "CrowdPose test", "SimplePose V2", "PoseNet_190_epoch.pth", None, _OG_DRIVE,
             decoder="offsets"),
    # CAL (README names the files; its model-zoo links are empty)
    ZooEntry("cal-hrnet-w32-64x48-coco", "cal_hrnet_w32_64x48", "coco", 0.584,
             "COCO val2017 (64x48, person boxes)", "CAL", "w32_64x48.pth", None, _CAL_PAGE,
             decoder="cal"),
    ZooEntry("cal-hrnet-w48-64x48-coco", "cal_hrnet_w48_64x48", "coco", 0.615,
             "COCO val2017 (64x48, person boxes)", "CAL", "w48_64x48.pth", None, _CAL_PAGE,
             decoder="cal"),
)}


# The default model's data: bupose's synthetic figures as configs/quickstart_synth.yaml draws
# them (128 px, one to three large people); held-out images use another seed than its train
# (0) and validation (1_000_003) sets.
DEFAULT_SCENE = {"size": (128, 128), "people": (1, 3), "scale": (0.65, 0.95), "crowding": 0.1,
                 "occluders": 0.0}
HELDOUT_SEED = 20_000_003


def default_model_note() -> str:
    """The one line printed when the shipped default model is used."""
    return ("note: no model given, using bupose's default model (a tiny HigherHRNet trained on "
            "synthetic figures only); for real photos use --checkpoint zoo:NAME, e.g. "
            "zoo:mmpose-higherhrnet-w32-512-coco (`bupose models --zoo` lists them)")


def cache_root() -> Path:
    """``$BUPOSE_CACHE`` or ``~/.cache/bupose``."""
    return Path(os.environ.get("BUPOSE_CACHE") or Path.home() / ".cache" / "bupose")


def get_entry(name: str) -> ZooEntry:
    """The zoo entry called ``name`` (ConfigError listing close names otherwise)."""
    if name not in ZOO:
        import difflib

        close = difflib.get_close_matches(name, list(ZOO), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown zoo model {name!r}{hint} (`bupose models --zoo` lists them)")
    return ZOO[name]


def entry_dir(entry: ZooEntry) -> Path:
    return cache_root() / "checkpoints" / entry.name


def checkpoint_path(entry: ZooEntry) -> Path:
    """Where the cache keeps (or expects) the entry's weights."""
    return entry_dir(entry) / entry.file_name


def fetch(entry: ZooEntry, progress: bool = True) -> Path:
    """The entry's weights in the cache, downloaded first when needed (DownloadError when the
    link needs a browser and the file is not there yet)."""
    path = checkpoint_path(entry)
    if path.is_file():
        return path
    if entry.url is None:
        raise DownloadError(
            f"{entry.name}: {entry.source} weights need a browser: download {entry.file_name} "
            f"from {entry.page} and place it at {path}")
    return download(entry.url, path, sha256=entry.sha256, progress=progress)


def official_yaml(entry: ZooEntry) -> dict[str, Any]:
    """The official-format experiment settings of a HigherHRNet-family entry: HRNet-W stages,
    one 4x4 deconvolution (none for bottom-up HRNet), input/output sizes, dataset and the
    published TEST settings (flip, single scale, 5x5 NMS, thresholds 0.1 / 1.0, adjust, refine,
    maps projected to the input size), as HigherHRNet's and mmpose 0.x's test configs give them;
    HAE entries add ``TEST.DECODER: hae`` (a bupose key: the decoder their score used).
    """
    w, size, n = entry.arch["width"], entry.arch["input_size"], entry.arch["deconvs"]
    blocks, modules = entry.arch.get("blocks", 4), entry.arch.get("modules", (1, 4, 3))
    crowd = entry.dataset == "crowdpose"

    def stage(branches: int, modules: int) -> dict[str, Any]:
        return {"NUM_MODULES": modules, "NUM_BRANCHES": branches, "BLOCK": "BASIC",
                "NUM_BLOCKS": [blocks] * branches,
                "NUM_CHANNELS": [w * 2 ** b for b in range(branches)], "FUSE_METHOD": "SUM"}

    deconv = {"NUM_DECONVS": n, "NUM_CHANNELS": [w] * n, "KERNEL_SIZE": [4] * n,
              "NUM_BASIC_BLOCKS": 4, "CAT_OUTPUT": [True] * n}
    test: dict[str, Any] = {
        "FLIP_TEST": True, "ADJUST": True, "REFINE": True, "SCALE_FACTOR": [1],
        "DETECTION_THRESHOLD": 0.1, "TAG_THRESHOLD": 1.0, "USE_DETECTION_VAL": True,
        "IGNORE_TOO_MUCH": False, "NMS_KERNEL": 5, "NMS_PADDING": 2, "PROJECT2IMAGE": True,
        "WITH_HEATMAPS": [True] * (n + 1), "WITH_AE": [True] + [False] * n}
    if entry.decoder != "ae":
        test["DECODER"] = entry.decoder
    return {
        "MODEL": {"NAME": "pose_higher_hrnet", "NUM_JOINTS": entry.num_keypoints,
                  "TAG_PER_JOINT": True,
                  "EXTRA": {"FINAL_CONV_KERNEL": 1, "STAGE2": stage(2, modules[0]),
                            "STAGE3": stage(3, modules[1]), "STAGE4": stage(4, modules[2]),
                            "DECONV": deconv}},
        "LOSS": {"NUM_STAGES": n + 1, "WITH_AE_LOSS": [True] + [False] * n},
        "DATASET": {"DATASET": "crowd_pose_kpt" if crowd else "coco_kpt",
                    "DATASET_TEST": "crowd_pose" if crowd else "coco",
                    "NUM_JOINTS": entry.num_keypoints, "INPUT_SIZE": size,
                    "OUTPUT_SIZE": [size // 4 * 2 ** i for i in range(n + 1)],
                    "MAX_NUM_PEOPLE": 30},
        "TEST": test,
    }


def config_path(entry: ZooEntry) -> Path | None:
    """The generated YAML beside the weights (written when absent or different), or None."""
    if entry.config is None:
        return None
    import yaml

    from bupose.utils.io import atomic_write_bytes

    path = entry_dir(entry) / entry.config
    text = ("# generated by bupose.hub for " + entry.name + " (official experiment format)\n"
            + yaml.safe_dump(official_yaml(entry), sort_keys=False))
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_bytes(path, text.encode("utf-8"))
    return path


@dataclass(frozen=True)
class Resolved:
    """A checkpoint argument made local: the weights, the config they need (or None) and the
    zoo entry (None for plain files and unknown URLs)."""

    path: Path
    config: Path | None = None
    entry: ZooEntry | None = None


def is_remote(text: str) -> bool:
    """True for ``zoo:NAME`` and http(s) URLs (what ``resolve_checkpoint`` fetches)."""
    return text.startswith(("zoo:", "http://", "https://"))


def resolve_checkpoint(text: str | os.PathLike, progress: bool = True) -> Resolved:
    """``zoo:NAME``, an http(s) URL or a local path -> the local weights and their config.

    A URL of a zoo entry is that entry (config supplied); another URL is cached under
    ``checkpoints/url-<hash>/<file name>``, checked against a ``-<8+ hex>`` hash in its name
    (the mmpose / torch.hub convention) when there is one.
    """
    text = os.fspath(text)
    if text.startswith("zoo:"):
        entry = get_entry(text[4:])
        return Resolved(fetch(entry, progress), config_path(entry), entry)
    if not text.startswith(("http://", "https://")):
        return Resolved(Path(text))
    for entry in ZOO.values():
        if entry.url == text:
            return Resolved(fetch(entry, progress), config_path(entry), entry)
    import hashlib
    import urllib.parse

    name = Path(urllib.parse.urlparse(text).path).name or "checkpoint.pth"
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    path = cache_root() / "checkpoints" / f"url-{key}" / name
    if path.is_file():
        return Resolved(path)
    sha = re.search(r"-([0-9a-f]{8,64})(?:_\d+)?\.[A-Za-z.]+$", name)
    return Resolved(download(text, path, sha256=sha.group(1) if sha else None,
                             progress=progress))


def zoo_rows() -> list[dict[str, Any]]:
    """The table ``bupose models --zoo`` prints: name, model, dataset, AP, metric, source,
    config, download (direct / by hand), file."""
    return [{"name": e.name, "model": _model_label(e), "dataset": e.dataset, "ap": e.ap,
             "metric": e.metric, "source": e.source, "decoder": e.decoder,
             "config": e.config or "none needed",
             "download": "direct" if e.url else "by hand", "url": e.url or e.page,
             "file": e.file_name}
            for e in ZOO.values()]


def _model_label(entry: ZooEntry) -> str:
    """The registered model, with the width / input size when the entry overrides them."""
    notes = []
    width, size = entry.arch.get("width"), entry.arch.get("input_size")
    if width and f"w{width}" not in entry.model:
        notes.append(f"W{width}")
    if size and not entry.model.endswith(str(size)):
        notes.append(f"{size} input")
    return entry.model + (f" ({', '.join(notes)})" if notes else "")


def format_zoo() -> str:
    """``zoo_rows`` as a text table."""
    head = (f"{'name':<38}{'model':<36}{'dataset':<10}{'AP':>6}  {'source':<22}"
            f"{'config':<37}download")
    lines = [head, "-" * len(head)]
    for r in zoo_rows():
        ap = f"{r['ap']:.3f}" if r["ap"] is not None else "-"
        how = "direct" if r["download"] == "direct" else f"by hand: {r['file']}"
        lines.append(f"{r['name']:<38}{r['model']:<36}{r['dataset']:<10}{ap:>6}  "
                     f"{r['source']:<22}{r['config']:<37}{how}")
    lines.append("AP: COCO val2017 or CrowdPose test, single scale with flip (CAL: 64x48 crops "
                 "of detected people). 'by hand': download the file from its page "
                 "(`bupose download NAME` prints where to place it).")
    return "\n".join(lines)
