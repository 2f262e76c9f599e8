"""Where a model comes from: the catalog, timm, torchvision, or a user's own builder function.

A model argument is one of

- ``NAME[:KNOB=VALUE,...]``: a catalog model (``se_resnet50:r=8``), knobs typed by the catalog;
- ``timm:NAME[:KEY=VALUE,...]``: ``timm.create_model(NAME, pretrained=False, **kwargs)`` (the optional
  extra ``senet-profile[timm]``); the model's ``pretrained_cfg`` input size is its default input;
- ``torchvision:NAME[:KEY=VALUE,...]``: ``torchvision.models.get_model(NAME, weights=None, **kwargs)``;
- ``package.module:FUNCTION[:KEY=VALUE,...]`` or ``path/to/file.py:FUNCTION[:KEY=VALUE,...]``: a function
  returning an ``nn.Module``, called with the keyword arguments. Windows paths work too
  (``path\\to\\file.py:FUNCTION``, ``C:\\dir\\file.py:FUNCTION``): a drive's colon is part of the path.

Keyword values of the last three are read as Python literals where they are one (``3``, ``0.5``,
``'a'``), ``on``/``off``/``true``/``false`` as booleans, ``none`` as None, and anything else as text.
Nothing is downloaded: weights are never loaded. Models are built on the meta device (no memory for
weights) unless the caller asks for a real device.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from senet_profile.catalog.spec import split_spec
from senet_profile.errors import UserInputError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

SOURCES = ("catalog", "timm", "torchvision", "function")
TIMM_HINT = "timm is not installed; install it with: pip install 'senet-profile[timm]'"
_WORDS: dict[str, Any] = {"on": True, "true": True, "off": False, "false": False, "none": None}
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")  # a Windows drive: C:\ or C:/


@dataclass(frozen=True)
class Source:
    """A parsed model argument: which source, the name inside it, and the keyword arguments as given."""

    kind: str
    name: str
    kwargs: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        knobs = ",".join(f"{k}={v}" for k, v in self.kwargs)
        head = self.name if self.kind in ("catalog", "function") else f"{self.kind}:{self.name}"
        return f"{head}:{knobs}" if knobs else head


@dataclass(frozen=True)
class Built:
    """A built model with the name it is shown under and its default input size (None: the caller's)."""

    name: str
    module: nn.Module
    input_size: tuple[int, int] | None = None


def parse_source(text: str) -> Source:
    """Split a model argument into its source, name and raw keyword arguments (syntax only).

    A Windows path's drive (``C:\\dir\\file.py:fn``, ``C:/dir/file.py:fn``) is part of the path, not a
    separator: an argument that starts with one names a file and its function.
    """
    text = text.strip()
    drive = text[:2] if _DRIVE.match(text) else ""
    head, _, rest = text[len(drive) :].partition(":")
    head = drive + head
    if head in ("timm", "torchvision"):
        name, pairs = split_spec(rest) if rest else ("", [])
        if not name:
            raise UserInputError(f"model argument {text!r} has no model name after '{head}:'")
        return Source(head, name, tuple(pairs))
    second, _, knobs = rest.partition(":")
    if second and "=" not in second:  # package.module:function or file.py:function
        pairs = split_spec(f"{second}:{knobs}")[1] if knobs else []
        return Source("function", f"{head}:{second}", tuple(pairs))
    if drive:
        raise UserInputError(f"model argument {text!r} names a file but no function: give PATH.py:FUNCTION")
    name, pairs = split_spec(text)
    return Source("catalog", name, tuple(pairs))


def literal(text: str) -> Any:
    """A keyword value: a Python literal where it is one, on/off/true/false/none, else the text."""
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _device(device: str) -> Any:
    import torch

    return torch.device(device)


def _check_module(value: object, where: str) -> nn.Module:
    from torch import nn

    if not isinstance(value, nn.Module):
        raise UserInputError(f"{where} returned {type(value).__name__}, not a torch.nn.Module")
    return value


def _call(builder: Callable[..., Any], kwargs: dict[str, Any], *, where: str, device: str) -> nn.Module:
    """Call a builder on ``device``; its failures become one-line errors naming the argument.

    On the meta device a builder that reads tensor values while building (``linspace(...).tolist()``)
    fails; it is then built on the CPU and moved to meta. The SE keys (``attach.MODEL_KEYS``: se=off, ...)
    the builder does not take by name are applied to what it returns.
    """
    from senet_profile.catalog.attach import MODEL_KEYS, apply_model_keys

    own = _named_parameters(builder)
    keys = {k: v for k, v in kwargs.items() if k in MODEL_KEYS and k not in own}
    if keys:
        rest = {k: v for k, v in kwargs.items() if k not in keys}
        return apply_model_keys(_call(builder, rest, where=where, device=device), keys, where=where)
    _check_kwargs(builder, kwargs, where)
    try:
        return _invoke(builder, kwargs, where=where, device=device)
    except UserInputError:
        raise
    except Exception as error:
        if device != "meta" or "unexpected keyword" in str(error):
            raise _input_error(error, where) from None
    try:
        return _invoke(builder, kwargs, where=where, device="cpu").to("meta")
    except UserInputError:
        raise
    except Exception as error:
        raise _input_error(error, where) from None


def _invoke(builder: Callable[..., Any], kwargs: dict[str, Any], *, where: str, device: str) -> nn.Module:
    with _device(device):
        value = builder(**kwargs)
    return _check_module(value, where).eval()


def _input_error(error: Exception, where: str) -> UserInputError:
    if isinstance(error, TypeError) and "unexpected keyword" in str(error):
        return UserInputError(f"{where} does not take {_first_line(error).rpartition(' ')[2]}")
    return UserInputError(f"{where} failed: {type(error).__name__}: {_first_line(error)}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _named_parameters(builder: Callable[..., Any]) -> set[str]:
    """The keyword names a builder's signature lists (not what ``**kwargs`` would take)."""
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return set()
    return {n for n, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _check_kwargs(builder: Callable[..., Any], kwargs: dict[str, Any], where: str) -> None:
    """Refuse keyword arguments a builder's signature does not take (when it has no ``**kwargs``)."""
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = [key for key in kwargs if key not in accepted]
    if unknown:
        raise UserInputError(
            f"{where} does not take {unknown[0]!r}; it accepts: {', '.join(accepted) or 'no arguments'}"
        )


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise UserInputError(TIMM_HINT) from None
    return timm


def _close(name: str, names: list[str], *, listing: str = "") -> str:
    """A hint naming the closest names (the three nearest, however far, when ``listing`` is given)."""
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6) or (
        difflib.get_close_matches(name, names, n=3, cutoff=0.0) if listing else []
    )
    hint = f"; closest: {', '.join(close)}" if close else ""
    return hint + (f"; `senet-profile list --source {listing} PATTERN` lists them" if listing else "")


def _build_timm(source: Source, device: str) -> Built:
    timm = _timm()
    names = timm.list_models()
    if source.name not in names:
        raise UserInputError(
            f"unknown timm model {source.name!r}{_close(source.name, names, listing='timm')}"
        )
    kwargs = {k: literal(v) for k, v in source.kwargs}
    where = f"timm:{source.name}"
    module = _call(lambda **kw: timm.create_model(source.name, pretrained=False, **kw), kwargs, where=where,
                   device=device)  # fmt: skip
    cfg = getattr(module, "pretrained_cfg", None) or {}
    size = cfg.get("input_size")
    return Built(str(source), module, (int(size[1]), int(size[2])) if size else None)


def _build_torchvision(source: Source, device: str) -> Built:
    from torchvision import models

    names = list(models.list_models())
    if source.name not in names:
        raise UserInputError(
            f"unknown torchvision model {source.name!r}{_close(source.name, names, listing='torchvision')}"
        )
    builder = models.get_model_builder(source.name)
    kwargs = {"weights": None, **{k: literal(v) for k, v in source.kwargs}}
    module = _call(builder, kwargs, where=f"torchvision:{source.name}", device=device)
    return Built(str(source), module, _torchvision_size(models, source.name))


def _torchvision_size(models: Any, name: str) -> tuple[int, int] | None:
    """A torchvision model's own input size: its default weights' crop (inception_v3: 299), if it has one."""
    try:
        crop = getattr(models.get_model_weights(name).DEFAULT.transforms(), "crop_size", None)
    except (ValueError, AttributeError, TypeError):  # a model without weights (or a changed API)
        return None
    return (int(crop[0]), int(crop[-1])) if crop else None


def _load_function(target: str) -> Callable[..., Any]:
    """The function named by ``package.module:function`` or ``path/to/file.py:function``."""
    location, _, function = target.rpartition(":")
    if location.endswith(".py"):
        path = Path(location)
        if not path.is_file():
            raise UserInputError(f"no such file {location!r} (in {target!r})")
        module_name = f"_senet_profile_user_{abs(hash(path.resolve()))}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UserInputError(f"cannot load {location!r} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            raise UserInputError(
                f"{location} failed to load: {type(error).__name__}: {_first_line(error)}"
            ) from None
    else:
        try:
            module = importlib.import_module(location)
        except ModuleNotFoundError as error:
            raise UserInputError(f"cannot import {location!r}: no module named {error.name!r}") from None
        except Exception as error:
            raise UserInputError(
                f"{location} failed to import: {type(error).__name__}: {_first_line(error)}"
            ) from None
    builder = getattr(module, function, None)
    if builder is None:
        public = [n for n in dir(module) if not n.startswith("_")]
        raise UserInputError(f"{location} has no function {function!r}{_close(function, public)}")
    if not callable(builder):
        raise UserInputError(f"{target} is a {type(builder).__name__}, not a function")
    return builder


def _build_function(source: Source, device: str) -> Built:
    builder = _load_function(source.name)
    kwargs = {k: literal(v) for k, v in source.kwargs}
    return Built(str(source), _call(builder, kwargs, where=source.name, device=device))


def _build_catalog(source: Source, device: str) -> Built:
    from senet_profile.catalog.attach import MODEL_KEYS, apply_model_keys
    from senet_profile.catalog.registry import get_entry, get_model
    from senet_profile.catalog.spec import build_spec

    knobs = get_entry(source.name).knobs
    own = {knob.name for knob in knobs}
    keys = [(k, v) for k, v in source.kwargs if k in MODEL_KEYS and k not in own]  # se=off on any entry
    spec = build_spec(source.name, [kv for kv in source.kwargs if kv not in keys], knobs)
    if not keys:
        return Built(str(spec), get_model(spec, device=device))
    name = f"{spec}{',' if spec.knobs else ':'}{','.join(f'{k}={v}' for k, v in keys)}"
    module = apply_model_keys(get_model(spec, device=device), {k: literal(v) for k, v in keys}, where=name)
    return Built(name, module)


_BUILDERS: dict[str, Callable[[Source, str], Built]] = {
    "catalog": _build_catalog,
    "timm": _build_timm,
    "torchvision": _build_torchvision,
    "function": _build_function,
}


def build(text: str | Source, *, device: str = "meta") -> Built:
    """Build the model a model argument names, on ``device`` (meta by default: no weights allocated)."""
    source = parse_source(text) if isinstance(text, str) else text
    return _BUILDERS[source.kind](source, device)


def list_source(source: str, pattern: str = "*") -> list[str]:
    """The model names ``source`` (timm or torchvision) offers that match a shell-style ``pattern``."""
    if source == "timm":
        return list(_timm().list_models(pattern))
    if source == "torchvision":
        from torchvision import models

        return sorted(n for n in models.list_models() if fnmatch.fnmatchcase(n, pattern))
    raise UserInputError(f"unknown source {source!r}; choose one of catalog, timm, torchvision")
