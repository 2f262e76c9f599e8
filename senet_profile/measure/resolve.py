"""The one resolver: a model argument of any source, a spec or a user's module, built where it is asked for.

Every command and API function turns a model into a built module here, for every source (catalog,
``timm:``, ``torchvision:``, ``module:function``, ``file.py:function``), on the device and dtype asked for.
Models are built on the meta device (no data) unless a measurement needs weights: then on the CPU, and
the timers move copies to the device (so CUDA is never handed a meta tensor).
"""

from __future__ import annotations

import inspect
import itertools
from dataclasses import replace

from torch import nn

from senet_profile.catalog.registry import get_model, parse_model_spec
from senet_profile.catalog.sources import Built, build, parse_source
from senet_profile.catalog.spec import ModelSpec
from senet_profile.errors import UserInputError
from senet_profile.setting import torch_dtype

Model = str | ModelSpec | nn.Module


def _check_module(model: nn.Module) -> None:
    """Refuse a user's module that cannot be fed one image tensor."""
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return  # no signature to read (a builtin): the trace will tell
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p.name for p in parameters if p.kind in positional and p.default is inspect.Parameter.empty]
    keyword = [
        p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is p.empty
    ]
    takes_one = any(p.kind in (*positional, inspect.Parameter.VAR_POSITIONAL) for p in parameters)
    if len(required) > 1 or keyword or not takes_one:
        needs = ", ".join(required + keyword) or "no input"
        raise UserInputError(
            f"{type(model).__name__}.forward takes ({needs}); senet-profile feeds a model one image tensor "
            "(wrap the model so that forward(x) takes one)"
        )


def check_model_argument(model: object) -> None:
    """Refuse, before any work, a model that is no model argument, spec or module taking one input."""
    if isinstance(model, nn.Module):
        _check_module(model)
    elif not isinstance(model, str | ModelSpec):
        raise UserInputError(
            f"a model is a model argument such as 'se_resnet50:r=8', a ModelSpec or a torch.nn.Module, "
            f"got {type(model).__name__} {model!r}"
        )


def on_meta(model: nn.Module) -> bool:
    """Whether any parameter or buffer of ``model`` lives on the meta device (has no data)."""
    return any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers()))


def resolve(
    model: Model, *, name: str | None = None, device: str = "meta", dtype: str | None = None
) -> Built:
    """The built model, its display name and default input size, for any model argument, spec or module.

    ``device``: where a model argument is built (meta: no data; ``cuda``: built on the CPU with its
    weights, then moved). A user's module is taken as it is (never copied or moved here). ``dtype`` casts
    a model argument's weights (fp32 when None).
    """
    check_model_argument(model)
    if name is not None and not isinstance(name, str):
        raise UserInputError(f"a model's name is text, got {type(name).__name__} {name!r}")
    if isinstance(model, nn.Module):
        return Built(name or type(model).__name__, model)
    where = "meta" if device == "meta" else "cpu"
    if isinstance(model, ModelSpec):
        built = Built(str(model), get_model(model, device=where))
    else:
        built = build(model, device=where)
        try:  # a forward taking two inputs (RAFT) is refused here, not mid-trace
            _check_module(built.module)
        except UserInputError as error:
            raise UserInputError(f"{built.name}: {error}") from None
    if device not in ("meta", "cpu"):
        built = replace(built, module=built.module.to(device))
    if dtype not in (None, "fp32"):
        built = replace(built, module=built.module.to(torch_dtype(dtype)))
    return replace(built, name=name) if name else built


def runnable(model: Model, built: Built, device: str) -> nn.Module:
    """A module to run on ``device`` (memory, latency): a user's module as given, else built with weights.

    Meta keeps the planning copy; any real device gets a CPU build with weights (the timers and the memory
    tracker move their own copies), so a model argument is never moved out of the meta device.
    """
    if isinstance(model, nn.Module):
        return model
    if device == "meta":
        return built.module
    return resolve(model, device="cpu").module


def canonical_name(text: str) -> str:
    """The canonical form of a model argument, read without building it (catalog knobs checked)."""
    source = parse_source(text)
    return str(parse_model_spec(text)) if source.kind == "catalog" else str(source)
