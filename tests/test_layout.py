"""The package's rooms and their one-way doors: catalog -> analysis -> report/history -> cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import senet_profile

PACKAGE_DIR = Path(senet_profile.__file__).parent
ROOMS = ("catalog", "analysis", "measure", "report", "history", "cli")
SHARED = {"errors", "io", "setting"}
MODULES_AT_ROOT = {*ROOMS, "api", *SHARED}  # the ground floor: every room may use the shared ones

# What each room may import from the package (besides itself and the shared modules).
ALLOWED: dict[str, set[str]] = {
    "catalog": set(),
    "analysis": {"catalog"},
    "measure": {"catalog", "analysis"},
    "api": {"catalog", "analysis", "measure"},
    "report": {"catalog", "analysis", "api", "history"},
    "history": {"catalog", "analysis", "api", "report"},
    "cli": {"api", "report", "history", "package"},  # never the catalog, the analyzers or measure
    "errors": set(),
    "io": set(),
    "setting": set(),
    "package": {"api"},
    "__main__": {"cli"},  # python -m senet_profile
}


def room_of(module: str) -> str:
    """The room a dotted module name lives in (``package`` for ``senet_profile`` itself)."""
    parts = module.split(".")
    if parts[0] != "senet_profile":
        raise ValueError(module)
    if len(parts) == 1:
        return "package"
    return parts[1]


def module_name(path: Path) -> str:
    """Dotted name of a source file of the package."""
    relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool) -> set[str]:
    """Every ``senet_profile`` module that ``source`` imports, at any depth (functions included)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "senet_profile":  # `from senet_profile import report`: the module, else the root
                modules = {alias.name for alias in node.names} & MODULES_AT_ROOT
                found.update(f"{target}.{name}" for name in modules)
                if len(modules) < len(node.names):
                    found.add(target)
            else:
                found.add(target)
    return {name for name in found if name.split(".")[0] == "senet_profile"}


def wrong_way_arrows(modules: dict[str, tuple[str, bool]]) -> list[str]:
    """Imports that run against the rooms' doors, as ``importer -> imported (room -> room)``."""
    problems = []
    for name, (source, is_package) in sorted(modules.items()):
        here = room_of(name)
        for target in sorted(imported_modules(source, name, is_package=is_package)):
            there = room_of(target)
            if there != here and there not in SHARED and there not in ALLOWED[here]:
                problems.append(f"{name} -> {target} ({here} -> {there})")
    return problems


def package_sources() -> dict[str, tuple[str, bool]]:
    """Every module of the installed package: name -> (source, is a package)."""
    return {
        module_name(path): (path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for path in PACKAGE_DIR.rglob("*.py")
    }


def test_every_module_lives_in_a_room() -> None:
    rooms = {room_of(name) for name in package_sources()}
    assert rooms <= set(ALLOWED), rooms - set(ALLOWED)
    assert {"catalog", "analysis", "measure", "report", "history", "cli"} <= rooms


def test_imports_run_one_way() -> None:
    assert wrong_way_arrows(package_sources()) == []


@pytest.mark.parametrize(
    ("importer", "source", "room"),
    [
        ("senet_profile.catalog.se", "from senet_profile.analysis import static\n", "analysis"),
        ("senet_profile.catalog.se", "def f():\n    import senet_profile.cli\n", "cli"),
        ("senet_profile.analysis.memory", "from senet_profile.report import tables\n", "report"),
        ("senet_profile.analysis.memory", "from ..history import records\n", "history"),
        ("senet_profile.report.plots", "from senet_profile.cli import app\n", "cli"),
        ("senet_profile.history.records", "from senet_profile import cli\n", "cli"),
        ("senet_profile.api", "from senet_profile.report import tables\n", "report"),
        ("senet_profile.catalog.se", "from senet_profile import api\n", "api"),
        ("senet_profile.cli.measure", "from senet_profile.analysis import metrics\n", "analysis"),
        ("senet_profile.cli.measure", "def f():\n    from senet_profile.catalog import index\n", "catalog"),
        ("senet_profile.cli.explain", "from senet_profile.measure import explaining\n", "measure"),
        ("senet_profile.analysis.latency", "from senet_profile.measure.core import profile\n", "measure"),
        ("senet_profile.setting", "import senet_profile.analysis.latency\n", "analysis"),
    ],
)
def test_a_wrong_way_import_is_caught(importer: str, source: str, room: str) -> None:
    problems = wrong_way_arrows({importer: (source, False)})
    assert len(problems) == 1 and problems[0].endswith(f"-> {room})"), problems


def test_right_way_imports_pass() -> None:
    modules = {
        "senet_profile.analysis.static": ("from senet_profile.catalog.se import SEBlock\n", False),
        "senet_profile.cli.track": ("from senet_profile.history import tracking\n", False),
        "senet_profile.report.paper": ("from senet_profile.api import overhead_pct\n", False),
        "senet_profile.catalog.models": ("from . import resnet\nfrom ..errors import UserInputError\n", True),
    }
    assert wrong_way_arrows(modules) == []


def test_each_room_says_what_it_holds() -> None:
    for room in ROOMS:
        doc = ast.get_docstring(ast.parse((PACKAGE_DIR / room / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc.splitlines()) == 1, room


def test_public_api_at_the_package_root() -> None:
    from senet_profile.catalog.se import SEConfig

    assert senet_profile.SEConfig is SEConfig
    for name in ("profile", "compare", "add_se", "list_models", "get_model", "SEConfig"):
        assert name in senet_profile.__all__ and callable(getattr(senet_profile, name))


def test_the_command_line_reaches_models_only_through_the_api() -> None:
    """cli/ imports nothing from analysis/, catalog/ or measure/: the API, history, report, io, errors."""
    cli = {name: found for name, found in package_sources().items() if room_of(name) == "cli"}
    reached = {
        room_of(target)
        for name, (source, is_package) in cli.items()
        for target in imported_modules(source, name, is_package=is_package)
    }
    assert reached <= {"cli", "api", "history", "report", "io", "errors", "setting", "package"}, reached


def _command_functions() -> dict[str, str]:
    """Every function registered as a command: function name -> the module that defines it."""
    from senet_profile.cli.app import app

    found = {}
    for info in app.registered_commands:
        found[info.callback.__name__] = info.callback.__module__
    for group in app.registered_groups:
        for info in group.typer_instance.registered_commands:
            found[info.callback.__name__] = info.callback.__module__
    return found


def test_no_command_calls_another_commands_function() -> None:
    commands = _command_functions()
    assert len(commands) >= 10
    calls = []
    for name, (source, _) in package_sources().items():
        if room_of(name) != "cli":
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if called in commands:
                    calls.append(f"{name} calls {called}")
    assert calls == []
