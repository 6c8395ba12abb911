"""Resumable, verified downloads against a local HTTP server (never the internet)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from bupose.utils.download import DownloadError, download, part_path
from tests.http_server import Files, serve

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


def test_download_verifies_full_hash_and_prefix(tmp_path: Path) -> None:
    files = Files({"/w.pth": DATA})
    with serve(files) as base:
        full = download(f"{base}/w.pth", tmp_path / "a" / "w.pth", sha256=SHA, progress=False)
        prefix = download(f"{base}/w.pth", tmp_path / "b" / "w.pth", sha256=SHA[:8],
                          progress=False)
    assert full.read_bytes() == DATA and prefix.read_bytes() == DATA
    assert not part_path(full).exists()


def test_bad_hash_leaves_no_file(tmp_path: Path) -> None:
    dest = tmp_path / "w.pth"
    with serve(Files({"/w.pth": DATA})) as base, pytest.raises(DownloadError, match="bad sha256"):
        download(f"{base}/w.pth", dest, sha256="0" * 8, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_resumes_with_range(tmp_path: Path) -> None:
    files = Files({"/w.pth": DATA}, drops=1, drop_after=100_000)
    with serve(files) as base:
        dest = download(f"{base}/w.pth", tmp_path / "w.pth", sha256=SHA, progress=False)
    assert dest.read_bytes() == DATA
    assert files.requests == [("/w.pth", None), ("/w.pth", "bytes=100000-")]


def test_failed_call_keeps_part_and_next_call_resumes(tmp_path: Path) -> None:
    files = Files({"/w.pth": DATA}, drops=2, drop_after=50_000)
    dest = tmp_path / "w.pth"
    with serve(files) as base:
        with pytest.raises(DownloadError, match="run again to resume"):
            download(f"{base}/w.pth", dest, sha256=SHA, progress=False, retries=1)
        assert not dest.exists() and part_path(dest).stat().st_size == 100_000
        download(f"{base}/w.pth", dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == DATA and not part_path(dest).exists()
    assert files.requests[-1] == ("/w.pth", "bytes=100000-")


def test_server_without_range_restarts_from_zero(tmp_path: Path) -> None:
    files = Files({"/w.pth": DATA}, drops=1, drop_after=70_000, range_supported=False)
    with serve(files) as base:
        dest = download(f"{base}/w.pth", tmp_path / "w.pth", sha256=SHA, progress=False)
    assert dest.read_bytes() == DATA


def test_complete_part_file_is_verified_and_renamed(tmp_path: Path) -> None:
    dest = tmp_path / "w.pth"
    part_path(dest).write_bytes(DATA)  # a previous run got every byte but stopped before renaming
    with serve(Files({"/w.pth": DATA})) as base:
        download(f"{base}/w.pth", dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == DATA


def test_offline_and_http_errors_are_one_line(tmp_path: Path) -> None:
    with serve(Files()) as base, pytest.raises(DownloadError, match="HTTP 404") as e:
        download(f"{base}/missing.pth", tmp_path / "m.pth", progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(DownloadError, match="cannot connect") as e:
        download("http://127.0.0.1:9/w.pth", tmp_path / "w.pth", progress=False)
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []
