"""bench/gpu_check.py: without a GPU it refuses in one line and writes nothing (it has not run on a GPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parent.parent / "bench" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present: run the script itself")
def test_without_a_gpu_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: no CUDA device") and done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
