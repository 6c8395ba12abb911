"""A local HTTP server in a thread for download tests (never the internet): serves byte blobs by
path, honours ``Range: bytes=N-`` (206 + Content-Range) and can drop the connection midway."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Files:
    """What the server serves: ``blobs`` by URL path; the first ``drops`` GETs of a path send
    only ``drop_after`` bytes of their body, then close. ``requests`` logs (path, Range)."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    drops: int = 0
    drop_after: int = 0
    range_supported: bool = True
    requests: list[tuple[str, str | None]] = field(default_factory=list)


def _handler(files: Files) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            rng = self.headers.get("Range")
            files.requests.append((self.path, rng))
            data = files.blobs.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            match = re.match(r"bytes=(\d+)-$", rng or "")
            if match and files.range_supported:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if files.drops > 0:
                files.drops -= 1
                self.wfile.write(body[:files.drop_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(files: Files) -> Iterator[str]:
    """Run the server in a daemon thread; yields its base URL ``http://127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
