"""Who measured: the machine, its class, the software versions and the commit, for every record."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import torch

_VERSIONED = ("torch", "torchvision", "senet-profile", "fvcore", "ptflops")
# Names the machine class instead of the CPU's: to read or check results as another class would
# (tests fake a new machine with it; a CI fleet can pool unlike runners under one name on purpose).
MACHINE_CLASS_ENV = "SENET_PROFILE_MACHINE_CLASS"


@dataclass(frozen=True)
class MachineInfo:
    """The hardware and software a figure was measured on."""

    machine_class: str
    cpu: str
    cores: int
    gpu: str | None
    platform: str
    python: str
    versions: dict[str, str]

    def as_dict(self) -> dict:
        """Plain JSON-ready form."""
        return asdict(self)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(errors="replace"), re.MULTILINE)
        if match:
            return " ".join(match.group(1).split())
    return platform.processor() or platform.machine() or "unknown CPU"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_class(cpu: str, cores: int, gpu: str | None) -> str:
    """A short slug naming the class of machine: figures compare only within one class."""
    parts = [cpu, f"{cores}c", *([gpu] if gpu else [])]
    return re.sub(r"[^a-z0-9]+", "-", " ".join(parts).lower()).strip("-")


def class_override() -> str | None:
    """The machine class named by ``$SENET_PROFILE_MACHINE_CLASS`` (as a slug), or None when unset."""
    given = os.environ.get(MACHINE_CLASS_ENV, "").strip()
    return re.sub(r"[^a-z0-9]+", "-", given.lower()).strip("-") or None


def describe_machine() -> MachineInfo:
    """The machine this process runs on (its class from ``$SENET_PROFILE_MACHINE_CLASS`` when set)."""
    cores = os.cpu_count() or 1
    cpu = cpu_model()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return MachineInfo(
        machine_class=class_override() or machine_class(cpu, cores, gpu),
        cpu=cpu,
        cores=cores,
        gpu=gpu,
        platform=platform.platform(),
        python=platform.python_version(),
        versions={package: _version(package) for package in _VERSIONED},
    )


def git_commit(repo: Path | None = None) -> str:
    """The checked-out commit (with ``-dirty`` when the tree has changes), or ``unknown`` outside git."""
    where = str(repo or Path.cwd())
    try:
        sha = subprocess.run(
            ["git", "-C", where, "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha
