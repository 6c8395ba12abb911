"""Interrupted work: Ctrl-C (SIGINT) during ``bupose infer`` leaves no results file and no
temporary file, exits 130 with one line and no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np


def _default_sigint() -> None:
    """The child's SIGINT as in a terminal: a shell's background job (`make test &`) starts with
    SIGINT ignored, which Python keeps, and Ctrl-C would never reach `bupose`."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_during_infer_leaves_no_partial_file(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (256, 256, 3), np.uint8)
    for i in range(600):  # long enough (tens of seconds) that SIGINT lands mid-run
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), image)
    out = tmp_path / "out" / "results.json"
    err_path = tmp_path / "stderr.txt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bupose", "infer", str(folder),
                                 "--model", "higherhrnet_tiny", "--input-size", "256",
                                 "--no-flip", "--json", str(out)], stderr=err, env=env,
                                preexec_fn=_default_sigint)
        deadline = time.time() + 90
        while time.time() < deadline and "img/s" not in err_path.read_text():
            time.sleep(0.2)  # wait until images are being processed
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=60)
    text = err_path.read_text()
    assert rc == 130, text
    assert "Traceback" not in text and "interrupted" in text, text
    assert not out.exists()
    assert not out.parent.exists() or not list(out.parent.iterdir())
