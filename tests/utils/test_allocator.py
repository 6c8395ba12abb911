"""bupose.utils.allocator: freed large blocks are reused instead of faulted back in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from bupose.utils.allocator import _user_chose_allocator

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

# Allocate, touch and free a 256 MiB block twelve times; print the minor page faults of the first
# round (a fresh block: faulted in either mode, whatever the page size) and of the last four, and
# whether the settings took effect. Tuned, the first rounds may still fault: the small objects
# Python allocates between two rounds can sit just above a freed block, and an aligned request
# needs a little more than the freed block, so the heap grows by a few blocks before freed
# neighbours coalesce and every round is served from kept memory.
_PROBE = """
import json, resource, sys
import torch
from bupose.utils.allocator import malloc_state, tune_malloc
if sys.argv[1] == "tuned":
    tune_malloc()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
start = faults()
torch.ones(64 << 20)
first = faults() - start
for _ in range(7):
    torch.ones(64 << 20)
start = faults()
for _ in range(4):
    torch.ones(64 << 20)
print(json.dumps({"first": first, "last4": faults() - start, "state": malloc_state()}))
"""


def _clean_env() -> dict[str, str]:
    """This environment without the variables by which a user picks the allocator."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("MALLOC_") and k != "BUPOSE_MALLOC"}


def _probe(mode: str, **env: str) -> dict[str, Any]:
    clean = _clean_env()
    done = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                          check=True, env={**clean, **env})
    return json.loads(done.stdout)


def test_tuned_malloc_reuses_freed_blocks() -> None:
    default, tuned = _probe("default"), _probe("tuned")
    assert default["state"] == "default" and tuned["state"] == "tuned"
    assert default["last4"] > 0.9 * 4 * default["first"]  # glibc's mmap path: faulted again
    assert tuned["last4"] < 0.05 * 4 * tuned["first"]  # the heap keeps the block


def test_user_choice_wins() -> None:
    assert _probe("tuned", BUPOSE_MALLOC="system")["state"] == "default"
    assert _probe("tuned", MALLOC_ARENA_MAX="2")["state"] == "default"
    assert _user_chose_allocator({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"})
    assert not _user_chose_allocator({"LD_PRELOAD": "", "PATH": "/bin"})


def test_cli_tunes_before_running_a_command() -> None:
    code = ("import sys\nfrom bupose.cli import main\n"
            "from bupose.utils.allocator import malloc_state\n"
            "main(['models'])\nprint(malloc_state(), file=sys.stderr)")
    clean = _clean_env()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env=clean)
    assert done.stderr.split()[-1] == "tuned"
