"""bupose.utils.allocator: freed large blocks are reused instead of faulted back in."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bupose.utils.allocator import _user_chose_allocator

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# Allocate, touch and free a 256 MiB block twelve times; print the minor page faults of the last
# four rounds and whether the settings took effect. Tuned, the first rounds may still fault: the
# small objects Python allocates between two rounds can sit just above a freed block, and an
# aligned request needs a little more than the freed block, so the heap grows by a few blocks
# before freed neighbours coalesce and every round is served from kept memory.
_PROBE = """
import json, resource, sys
import torch
from bupose.utils.allocator import malloc_state, tune_malloc
if sys.argv[1] == "tuned":
    tune_malloc()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    torch.ones(64 << 20)
start = faults()
for _ in range(4):
    torch.ones(64 << 20)
print(json.dumps({"faults": faults() - start, "state": malloc_state()}))
"""


def _probe(mode: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                          check=True, env=env)
    return json.loads(done.stdout)


def test_tuned_malloc_reuses_freed_blocks() -> None:
    default, tuned = _probe("default"), _probe("tuned")
    pages = 4 * (256 << 20) // 4096  # what the four rounds fault in when nothing is kept
    assert default["state"] == "default" and tuned["state"] == "tuned"
    assert default["faults"] > 0.9 * pages  # glibc's mmap path: every round faults again
    assert tuned["faults"] < 0.05 * pages  # the heap keeps the block


def test_user_choice_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("BUPOSE_MALLOC", None)
    assert _probe("tuned", {**env, "BUPOSE_MALLOC": "system"})["state"] == "default"
    assert _probe("tuned", {**env, "MALLOC_ARENA_MAX": "2"})["state"] == "default"
    assert _user_chose_allocator({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"})
    assert not _user_chose_allocator({"LD_PRELOAD": "", "PATH": "/bin"})


def test_cli_tunes_before_running_a_command() -> None:
    code = ("from bupose.cli import main\nfrom bupose.utils.allocator import malloc_state\n"
            "main(['models'])\nprint(malloc_state())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split()[-1] == "tuned"
