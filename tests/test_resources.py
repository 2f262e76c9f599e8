"""Memory planned before a CPU run: the need counted on meta, compared with what is free."""

from __future__ import annotations

import pytest
import torch

from senet_profile.analysis import resources
from senet_profile.analysis.memory import measure_memory
from senet_profile.catalog.registry import get_model
from senet_profile.errors import UserInputError


def test_need_is_weights_input_and_the_planned_peak() -> None:
    model = get_model("resnet18")
    shape = (2, 3, 64, 64)
    planned = measure_memory(model, shape, mode="infer", device="meta")
    weights = sum(t.numel() for t in [*model.parameters(), *model.buffers()]) * 4
    needed = resources.needed_bytes(model, shape, mode="infer", dtype=torch.float32)
    assert needed == weights + 2 * 3 * 64 * 64 * 4 + planned.peak_bytes


def test_a_run_that_does_not_fit_is_refused_with_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "available_bytes", lambda: 1_000)
    with pytest.raises(
        UserInputError, match=r"needs [\d,]+ bytes .* only 1,000 bytes are free.*--device meta"
    ):
        resources.check_fits(get_model("resnet18"), (1, 3, 64, 64), mode="train", dtype=torch.float32)


def test_unknown_free_memory_refuses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "available_bytes", lambda: None)
    resources.check_fits(get_model("resnet18"), (1, 3, 64, 64), mode="infer", dtype=torch.float32)


def test_free_memory_is_read_on_linux() -> None:
    free = resources.available_bytes()
    assert free is None or free > 0
