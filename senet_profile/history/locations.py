"""Where results live: ``--results DIR``, else ``$SENET_PROFILE_RESULTS``, else ``./results``.

Light on purpose (no torch, no pandas): the command line resolves folders before it imports anything heavy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from senet_profile.errors import UserInputError

RESULTS_ENV = "SENET_PROFILE_RESULTS"
DEFAULT_RESULTS = Path("results")


@dataclass(frozen=True)
class Results:
    """A results folder and its parts: run records, baselines, sweeps, plots and the paper report."""

    root: Path

    @property
    def runs(self) -> Path:
        """Run records, one subfolder per machine class."""
        return self.root / "runs"

    @property
    def baselines(self) -> Path:
        """One baseline record per machine class."""
        return self.root / "baselines"

    @property
    def plots(self) -> Path:
        """PNG and SVG plots."""
        return self.root / "plots"

    @property
    def sweeps(self) -> Path:
        """Sweeps: a manifest and one record per finished case each."""
        return self.root / "sweeps"

    @property
    def machine(self) -> Path:
        """Machine models (bandwidths, MAC rates, fixed costs), one file per machine class."""
        return self.root / "machine"

    @property
    def paper(self) -> Path:
        """The paper's figures beside ours."""
        return self.root / "paper"


def results_root(given: Path | None) -> Results:
    """The results folder: the one given, else the environment variable's, else ./results."""
    if given is not None:
        return Results(given)
    env = os.environ.get(RESULTS_ENV)
    return Results(Path(env) if env else DEFAULT_RESULTS)


def machine_models(given: Path | None) -> Path:
    """Where machine models are kept: the results folder's ``machine/`` when there is a results folder (a
    clone of this repository, or ``--results``), else the user's cache (``$XDG_CACHE_HOME`` or
    ``~/.cache``, then ``senet-profile/machine``): a plain ``compare`` writes nothing in the user's folder."""
    results = results_root(given)
    if given is not None or os.environ.get(RESULTS_ENV) or results.root.is_dir():
        return results.machine
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "senet-profile" / "machine"


def existing_results(given: Path | None) -> Results:
    """The results folder for a command that reads history; a missing one is refused in one line."""
    results = results_root(given)
    if not results.root.is_dir():
        raise UserInputError(
            f"no results folder at {results.root}: run `senet-profile record` or `senet-profile bench` "
            f"first, or point --results (or ${RESULTS_ENV}) at one"
        )
    return results
