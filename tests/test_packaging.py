"""pyproject.toml lists every package of senet_profile, and ships bench/ as ``senet_profile_bench``."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).parent.parent


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_is_listed() -> None:
    inits = (ROOT / "senet_profile").rglob("__init__.py")
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in inits}
    assert set(_setuptools()["packages"]) == found | {"senet_profile_bench"}


def test_bench_folder_ships_as_a_package() -> None:
    assert _setuptools()["package-dir"] == {"senet_profile_bench": "bench"}
    assert (ROOT / "bench" / "__init__.py").is_file()
    assert (ROOT / "bench" / "conftest.py").is_file()


def test_bench_extra_holds_what_the_suite_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {
        name: {requirement.split(">=")[0] for requirement in requirements}
        for name, requirements in project["optional-dependencies"].items()
    }
    assert extras["bench"] == {"pytest", "pytest-benchmark"}
    assert extras["bench"] <= extras["test"]  # tests/test_cli_bench.py collects the real suite
    assert all(">=" in requirement and "==" not in requirement for requirement in project["dependencies"])
