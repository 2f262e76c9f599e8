"""Start-up: --help, --version and list import neither torch nor pandas (their time is a bench figure)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "pandas", "matplotlib", "fvcore", "ptflops", "timm", "numpy")
PROBE = (
    "import sys\n"
    "from senet_profile.cli import main\n"
    "sys.argv = ['senet-profile', *sys.argv[1:]]\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["list"], ["list", "se_*", "--format", "json"]])
def test_light_commands_import_nothing_heavy(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "[]"
