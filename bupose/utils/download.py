"""Resumable, verified HTTP(S) downloads.

``download(url, dest)`` streams into ``dest.part`` (a tqdm bar on stderr), continues an existing
``.part`` with an HTTP ``Range`` request (also after a dropped connection, up to ``retries``
times in one call), checks the SHA-256 (the full hash, or a leading prefix such as the 8 hex
digits in mmpose file names) and only then renames the ``.part`` file to ``dest``. ``dest``
therefore only ever holds a complete, verified file. A bad hash deletes the ``.part`` file; a
network failure keeps it for the next attempt to resume. Every failure raises ``DownloadError``
with a one-line message.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from bupose.errors import BuposeError

CHUNK = 1 << 16
TIMEOUT = 30.0  # seconds without data before a connection counts as dropped


class DownloadError(BuposeError):
    """A download failed: offline, HTTP error, interrupted too often, or a bad hash."""


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: Path, sha256: str | None, what: str) -> None:
    """Raise DownloadError unless ``path``'s SHA-256 starts with ``sha256`` (None: no check)."""
    if not sha256:
        return
    actual = sha256_of(path)
    if not actual.startswith(sha256.lower()):
        raise DownloadError(f"{what}: bad sha256 {actual[:len(sha256)]}, expected {sha256} "
                            "(file removed; run again, or check the source)")


def part_path(dest: Path) -> Path:
    """Where an unfinished download of ``dest`` is kept."""
    return dest.with_name(dest.name + ".part")


def download(url: str, dest: str | os.PathLike, sha256: str | None = None,
             progress: bool = True, retries: int = 3) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify, rename; return ``dest``.

    Args:
        url: http(s) (or file) URL.
        dest: final path; its folder is created.
        sha256: the expected SHA-256 hex digest or a prefix of it (None: not checked).
        progress: show a tqdm bar on stderr.
        retries: connection drops survived in this call (each continues with ``Range``).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, progress)
            break
        except _Interrupted as e:
            if attempt == retries:
                raise DownloadError(f"{url}: connection dropped {retries + 1} times ({e}); "
                                    f"{part.stat().st_size} bytes kept in {part}, run again "
                                    "to resume") from None
    try:
        check_sha256(part, sha256, url)
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


class _Interrupted(Exception):
    """The connection dropped; the .part file holds what arrived."""


def _open(url: str, offset: int) -> tuple[http.client.HTTPResponse, int, int | None]:
    """The response, the offset it starts at (0 when the server ignored Range) and the total
    size when known."""
    request = urllib.request.Request(url, headers={"User-Agent": "bupose"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310 (http/https)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing after offset: the .part file is complete
            return e, offset, offset  # type: ignore[return-value]
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"{url}: cannot connect ({reason}); offline? Download it by hand "
                            "and place it in the cache (see `bupose download --help`)") from None
    length = response.headers.get("Content-Length")
    if getattr(response, "status", 200) == 206:
        match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        start = int(match.group(1)) if match else offset
        total = int(match.group(2)) if match and match.group(2) != "*" else None
        return response, start, total
    return response, 0, int(length) if length is not None else None


def _fetch(url: str, part: Path, progress: bool) -> None:
    """Append the rest of ``url`` to ``part``; raise _Interrupted when the connection drops."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    response, start, total = _open(url, offset)
    if start == offset and total == offset and offset:
        response.close()
        return
    mode = "ab" if start == offset and offset else "wb"
    done = start if mode == "ab" else 0
    bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
               desc=part.name[:-5], disable=not progress, leave=False)
    try:
        with response, open(part, mode) as f:
            while True:
                try:
                    block = response.read(CHUNK)
                except (http.client.IncompleteRead, ConnectionError, TimeoutError) as e:
                    raise _Interrupted(type(e).__name__) from None
                if not block:
                    break
                f.write(block)
                done += len(block)
                bar.update(len(block))
    finally:
        bar.close()
    if total is not None and done < total:
        raise _Interrupted(f"{done} of {total} bytes")
