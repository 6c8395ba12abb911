"""`bupose download` and `--checkpoint zoo:NAME` / `--checkpoint URL` against a local HTTP server
(never the internet): the downloaded weights give the same results as the local file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from bupose import hub
from bupose.cli import main
from tests.conftest import FIXTURES, SHARED_DATA, require
from tests.http_server import Files, serve
from tests.test_hub import tiny_entry

TINY = FIXTURES / "tiny"
SAMPLES = SHARED_DATA / "samples" / "coco"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BUPOSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _infer(out: Path, *model_args: str) -> list[dict]:
    images = sorted(require(SAMPLES).glob("*.jpg"))[:2]
    assert main(["infer", *map(str, images), *model_args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_download_prints_weights_and_config(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = require(TINY / "tiny_model.pth").read_bytes()
    with serve(Files({"/t.pth": data})) as base:
        entry = tiny_entry(f"{base}/t.pth", hashlib.sha256(data).hexdigest()[:8])
        monkeypatch.setitem(hub.ZOO, "test-tiny", entry)
        assert main(["download", "test-tiny", "--quiet"]) == 0
    out = capsys.readouterr().out.split()
    assert out == [str(hub.checkpoint_path(entry)), str(hub.entry_dir(entry) / "tiny.yaml")]


def test_download_failures_exit_2_with_one_line(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with serve(Files({"/t.pth": b"corrupt" * 100})) as base:
        entry = tiny_entry(f"{base}/t.pth", "0badc0de")
        monkeypatch.setitem(hub.ZOO, "test-tiny", entry)
        assert main(["download", "test-tiny", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad sha256" in err and "\n" not in err
    assert not hub.entry_dir(entry).exists() or not any(hub.entry_dir(entry).iterdir())
    monkeypatch.setitem(hub.ZOO, "test-tiny", tiny_entry("http://127.0.0.1:9/t.pth", None))
    assert main(["download", "test-tiny", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot connect" in err and "\n" not in err
    assert main(["download", "no-such-model"]) == 2


def test_zoo_and_url_checkpoints_match_the_local_file(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights, config = require(TINY / "tiny_model.pth"), require(TINY / "tiny_config.yaml")
    local = _infer(tmp_path / "local.json", "--checkpoint", str(weights),
                   "--official-config", str(config))
    assert local, "the tiny fixture model finds people on the samples"
    data = weights.read_bytes()
    with serve(Files({"/tiny_model.pth": data, "/plain/tiny_model.pth": data})) as base:
        monkeypatch.setitem(hub.ZOO, "test-tiny",
                            tiny_entry(f"{base}/tiny_model.pth",
                                       hashlib.sha256(data).hexdigest()[:8]))
        zoo = _infer(tmp_path / "zoo.json", "--checkpoint", "zoo:test-tiny")  # config supplied
        url = _infer(tmp_path / "url.json", "--checkpoint", f"{base}/plain/tiny_model.pth",
                     "--official-config", str(config))
    _same(zoo, local)
    _same(url, local)


def _same(ours: list[dict], ref: list[dict]) -> None:
    """Same people in the same order: x, y within 1e-3 px, values and scores within 1e-6 (the
    fixtures' tolerances; repeated CPU forwards differ by ~1e-7)."""
    assert [e["image_id"] for e in ours] == [e["image_id"] for e in ref]
    for a, b in zip(ours, ref):
        ka, kb = np.reshape(a["keypoints"], (-1, 3)), np.reshape(b["keypoints"], (-1, 3))
        assert np.abs(ka[:, :2] - kb[:, :2]).max() <= 1e-3
        assert np.abs(ka[:, 2] - kb[:, 2]).max() <= 1e-6 and abs(a["score"] - b["score"]) <= 1e-6


def test_models_zoo_lists_every_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--zoo"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in hub.ZOO)
    assert "0.677" in text and "higher_hrnet32_coco_512x512" not in text  # direct: no file hint
    assert main(["models", "--zoo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(hub.ZOO)
    assert {"name", "model", "dataset", "ap", "source", "config", "url"} <= set(rows[0])
