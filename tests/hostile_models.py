"""Model builders that misbehave, for the bad-input tests: they exit, interrupt, print, raise, download,
or leave a mark when called (to show a command that must run no model code ran none)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn


class _Small(nn.Module):
    """A conv and a pool; ``forward`` may misbehave in the way ``how`` names."""

    def __init__(self, how: str = "") -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.how = how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "exit":
            sys.exit(0)
        if self.how == "interrupt":
            raise KeyboardInterrupt
        if self.how == "print":
            print("a forward that talks")
        if self.how in ("KeyError", "AssertionError", "TypeError"):
            raise {"KeyError": KeyError, "AssertionError": AssertionError, "TypeError": TypeError}[self.how](
                "the forward broke"
            )
        return self.pool(self.conv(x)).flatten(1)


def forward(how: str = "") -> nn.Module:
    """A model whose forward misbehaves as ``how`` says (exit, interrupt, print, KeyError, ...)."""
    return _Small(how)


def exits() -> nn.Module:
    """A builder that ends the program."""
    sys.exit(0)


def interrupts() -> nn.Module:
    """A builder that raises KeyboardInterrupt itself (no Ctrl-C was pressed)."""
    raise KeyboardInterrupt


def talks() -> nn.Module:
    """A builder that prints."""
    print("a builder that talks")
    return _Small("print")


def downloads() -> nn.Module:
    """A builder that would fetch weights."""
    torch.hub.load_state_dict_from_url("https://example.invalid/weights.pth")
    return _Small()


def marks(marker: str = "") -> nn.Module:
    """A builder that leaves a file behind when called: proof that it ran."""
    Path(marker).write_text("called\n", encoding="utf-8")
    return _Small()
