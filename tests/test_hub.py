"""The model zoo table, its generated configs, and fetching zoo entries / URLs into the cache from a
local HTTP server (never the internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest

from bupose import hub
from bupose.errors import ConfigError
from bupose.utils.download import DownloadError, part_path
from tests.conftest import FIXTURES, require
from tests.http_server import Files, serve

TINY = FIXTURES / "tiny"
# the tiny official fixture model as a zoo entry: HRNet-W16, 1 block, modules 1/1/2, input 256
TINY_ARCH = {"width": 16, "input_size": 256, "deconvs": 1, "blocks": 1, "modules": (1, 1, 2)}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BUPOSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def tiny_entry(url: str | None, sha256: str | None, name: str = "test-tiny") -> hub.ZooEntry:
    return hub.ZooEntry(name, "higherhrnet_tiny", "coco", None, "none", "test", "tiny_model.pth",
                        url, "http://example.invalid/page", sha256, "ae", "tiny.yaml", TINY_ARCH)


def test_table_is_consistent() -> None:
    from bupose.models import MODELS

    paths = set()
    for name, e in hub.ZOO.items():
        assert name == e.name and e.model in MODELS, name
        assert e.url or e.page, f"{name}: neither a link nor a page"
        assert e.ap is None or 0.3 < e.ap < 0.8, name
        paths.add(hub.checkpoint_path(e))
        if e.source == "mmpose 0.x":
            assert e.url == "https://download.openmmlab.com/mmpose/bottom_up/" + e.file_name
            assert e.sha256 == re.search(r"-([0-9a-f]{8})_", e.file_name).group(1)
    assert len(paths) == len(hub.ZOO)
    assert hub.ZOO["mmpose-higherhrnet-w32-512-coco"].ap == 0.677


def test_generated_configs_rebuild_the_registered_models(cache: Path) -> None:
    from bupose.inference.settings import TestSettings
    from bupose.models.official_config import read_official_config
    from bupose.models.zoo import match_registered

    for e in hub.ZOO.values():
        path = hub.config_path(e)
        if e.config is None:
            assert path is None
            continue
        cfg = read_official_config(path)
        name, kwargs = match_registered(cfg.arch, cfg.input_size)
        assert name == e.model or e.model == "higherhrnet_w32_davit_512", e.name
        assert cfg.arch["num_keypoints"] == e.num_keypoints
        assert cfg.input_size == e.arch["input_size"]
        assert cfg.spec_name == ("crowdpose14" if e.dataset == "crowdpose" else "coco17")
        settings = TestSettings.from_meta(cfg.test, cfg.input_size)
        assert settings.decoder == e.decoder and settings.flip
        assert settings.grouping.nms_kernel == 5
        assert cfg.arch["stages"][2]["num_channels"][0] == e.arch["width"]
        assert ("stages" in kwargs) == (e.name == "mmpose-hrnet-w48-512-coco")


def test_tiny_config_equals_the_official_fixture_yaml(cache: Path) -> None:
    from bupose.models.official_config import read_official_config

    ours = read_official_config(hub.config_path(tiny_entry(None, None)))
    ref = read_official_config(require(TINY / "tiny_config.yaml"))
    assert ours.arch == ref.arch and ours.input_size == ref.input_size
    assert {k: ours.test[k] for k in ref.test} == ref.test


def test_zoo_download_verifies_and_supplies_the_config(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = require(TINY / "tiny_model.pth").read_bytes()
    sha = hashlib.sha256(data).hexdigest()[:8]
    files = Files({"/tiny_model.pth": data}, drops=1, drop_after=len(data) // 3)
    with serve(files) as base:
        monkeypatch.setitem(hub.ZOO, "test-tiny", tiny_entry(f"{base}/tiny_model.pth", sha))
        found = hub.resolve_checkpoint("zoo:test-tiny", progress=False)
        assert found.path.read_bytes() == data and not part_path(found.path).exists()
        assert found.config is not None and found.config.parent == found.path.parent
        assert files.requests[1] == ("/tiny_model.pth", f"bytes={len(data) // 3}-")
        again = hub.resolve_checkpoint(f"{base}/tiny_model.pth", progress=False)  # zoo URL
    assert again == found and len(files.requests) == 2  # cached: no new request


def test_zoo_bad_hash_leaves_nothing(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(Files({"/tiny_model.pth": b"not the weights" * 1000})) as base:
        entry = tiny_entry(f"{base}/tiny_model.pth", "deadbeef")
        monkeypatch.setitem(hub.ZOO, "test-tiny", entry)
        with pytest.raises(DownloadError, match="bad sha256"):
            hub.resolve_checkpoint("zoo:test-tiny", progress=False)
    folder = hub.entry_dir(entry)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_browser_only_entry_names_file_and_place(cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    entry = tiny_entry(None, None)
    monkeypatch.setitem(hub.ZOO, "test-tiny", entry)
    with pytest.raises(DownloadError) as e:
        hub.resolve_checkpoint("zoo:test-tiny", progress=False)
    assert str(hub.checkpoint_path(entry)) in str(e.value) and "example.invalid" in str(e.value)
    hub.checkpoint_path(entry).parent.mkdir(parents=True)
    hub.checkpoint_path(entry).write_bytes(b"placed by hand")
    assert hub.resolve_checkpoint("zoo:test-tiny").path == hub.checkpoint_path(entry)


def test_plain_url_is_cached_and_hash_in_name_checked(cache: Path) -> None:
    data = b"x" * 5000
    good = f"w-{hashlib.sha256(data).hexdigest()[:10]}_1.pth"
    with serve(Files({f"/{good}": data, "/w-0123abcd.pth": data})) as base:
        found = hub.resolve_checkpoint(f"{base}/{good}", progress=False)
        assert found.path.name == good and found.path.read_bytes() == data
        assert found.config is None and found.entry is None
        with pytest.raises(DownloadError, match="bad sha256"):
            hub.resolve_checkpoint(f"{base}/w-0123abcd.pth", progress=False)


def test_unknown_name_and_local_paths() -> None:
    with pytest.raises(ConfigError, match="did you mean mmpose-higherhrnet-w32-512-coco"):
        hub.get_entry("mmpose-higherhrnet-w32-512-cooc")
    assert hub.resolve_checkpoint("some/file.pth") == hub.Resolved(Path("some/file.pth"))
    assert dataclasses.is_dataclass(hub.ZOO["hae-higherhrnet-w32-512-coco"])
    assert "zoo:NAME" in hub.default_model_note() and "\n" not in hub.default_model_note()
