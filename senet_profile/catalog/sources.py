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
Nothing is downloaded: weights are never loaded (torchvision's ``weights`` and ``weights_backbone`` are
forced off, and a model whose building would download anything is refused). Models are built on the meta
device (no memory for weights) unless the caller asks for a real device.

A user's (or a third party's) model code is fenced (``run_user_code``): while it runs, what it prints goes
to stderr (so ``--format json`` stays valid), and ``sys.exit``, a KeyboardInterrupt it raises (not a
Ctrl-C) and every exception it raises become one UserInputError naming the model. ``model_failure`` tells
an exception raised later, inside such a model's forward, from a bug in the tool's own code (which stays
a traceback).
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import fnmatch
import importlib
import importlib.util
import inspect
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from senet_profile.catalog.spec import split_spec
from senet_profile.errors import UserInputError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

SOURCES = ("catalog", "timm", "torchvision", "function")
TIMM_HINT = "timm is not installed; install it with: pip install 'senet-profile[timm]'"
_WORDS: dict[str, Any] = {"on": True, "true": True, "off": False, "false": False, "none": None}
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")  # a Windows drive: C:\ or C:/
_NO_WEIGHTS = ("weights", "weights_backbone")
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MODEL_CODE: dict[str, str] = {}  # a file (or a package's folder) of a model's own code -> the model's name
T = TypeVar("T")


class SigintWatch:
    """Counts real Ctrl-Cs (SIGINT) while installed, so a KeyboardInterrupt that model code raises itself
    is told apart from the user's Ctrl-C; the count is shared by nested watches."""

    received = 0  # every SIGINT this process took while a watch was installed

    def __init__(self) -> None:
        self.start = SigintWatch.received
        self.unsure = False  # not in the main thread, or SIGINT ignored: every interrupt counts as real

    @property
    def interrupted(self) -> bool:
        """Whether a real Ctrl-C arrived since this watch began."""
        return self.unsure or SigintWatch.received > self.start


def _on_sigint(signum: int, frame: object) -> None:
    SigintWatch.received += 1
    raise KeyboardInterrupt


@contextlib.contextmanager
def watch_sigint() -> Iterator[SigintWatch]:
    """Install a SIGINT handler that counts Ctrl-Cs (and raises KeyboardInterrupt, as Python's does)."""
    watch = SigintWatch()
    if threading.current_thread() is not threading.main_thread():
        watch.unsure = True
        yield watch
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN / SIG_DFL: leave the process's choice alone
        watch.unsure = True
        yield watch
        return
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield watch
    finally:
        signal.signal(signal.SIGINT, previous)


def _refuse_download(*args: object, **kwargs: object) -> None:
    url = next((a for a in args if isinstance(a, str)), kwargs.get("url", "a URL"))
    raise UserInputError(f"building it would download {url}; senet-profile never downloads weights")


@contextlib.contextmanager
def _no_downloads() -> Iterator[None]:
    """Downloads through torch.hub (and torchvision's weights) raise a UserInputError meanwhile."""
    import torch.hub

    targets = [(torch.hub, "download_url_to_file"), (torch.hub, "load_state_dict_from_url")]
    vision = sys.modules.get("torchvision.models._api")
    if vision is not None and hasattr(vision, "load_state_dict_from_url"):
        targets.append((vision, "load_state_dict_from_url"))
    saved = [(owner, name, getattr(owner, name)) for owner, name in targets]
    for owner, name, _ in saved:
        setattr(owner, name, _refuse_download)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def run_user_code(name: str, fn: Callable[[], T]) -> T:
    """Run model code of ``name`` (a builder, a module's import, a forward): its stdout goes to stderr,
    downloads are refused, and its ``sys.exit``, raised KeyboardInterrupt or exception becomes one
    UserInputError naming the model. A real Ctrl-C stays a KeyboardInterrupt (the CLI exits 130)."""
    with watch_sigint() as watch:
        try:
            with contextlib.redirect_stdout(sys.stderr), _no_downloads():
                return fn()
        except UserInputError as error:
            raise UserInputError(str(error) if str(error).startswith(name) else f"{name}: {error}") from None
        except SystemExit as error:
            raise UserInputError(
                f"{name} called sys.exit({error.code!r}) while being built or run; a model must not end "
                "the program (remove the call)"
            ) from None
        except KeyboardInterrupt:
            if watch.interrupted:
                raise
            raise UserInputError(f"{name} raised KeyboardInterrupt while being built or run") from None
        except Exception as error:
            raise UserInputError(f"{name} failed: {type(error).__name__}: {_first_line(error)}") from None


def _code_files(module: nn.Module) -> set[str]:
    files = set()
    for sub in module.modules():
        with contextlib.suppress(TypeError, OSError):
            files.add(os.path.abspath(inspect.getfile(type(sub))))
    return files


def _remember(name: str, module: nn.Module, *extra: str) -> None:
    """Note the files a non-catalog model's code lives in, so ``model_failure`` can tell its errors."""
    for path in [*_code_files(module), *extra]:
        if not path.startswith(_PACKAGE_DIR + os.sep) and "/torch/" not in path.replace(os.sep, "/"):
            _MODEL_CODE.setdefault(path, name)


def _model_of(filename: str) -> str | None:
    path = os.path.abspath(filename)
    if path in _MODEL_CODE:
        return _MODEL_CODE[path]
    return next((name for root, name in _MODEL_CODE.items() if path.startswith(root + os.sep)), None)


class _GuardedStdout:
    """Standard output that sends what a model's own code prints to stderr (machine-readable output stays
    valid); everything else passes through to the stream it wraps."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write ``text``: to stderr when the caller is a model's code, else to the wrapped stream."""
        frame: FrameType | None = sys._getframe(1)
        for _ in range(2):
            if frame is None:
                break
            if _MODEL_CODE and _model_of(frame.f_code.co_filename) is not None:
                return sys.stderr.write(text)
            frame = frame.f_back
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def guarded_stdout() -> Iterator[None]:
    """While the block runs, what a built model's own code prints goes to stderr, not stdout."""
    previous = sys.stdout
    sys.stdout = _GuardedStdout(previous)
    try:
        yield
    finally:
        sys.stdout = previous


def model_failure(error: BaseException) -> str | None:
    """One line when ``error`` came out of a non-catalog model's own code (its forward or builder), after
    the tool's last frame; None for anything else (a bug of the tool's own stays a traceback)."""
    if not _MODEL_CODE:
        return None
    last_tool, last_model, model = -1, -1, None
    tb, index = error.__traceback__, 0
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep):
            last_tool = index
        elif (found := _model_of(filename)) is not None:
            last_model, model = index, found
        tb, index = tb.tb_next, index + 1
    if model is None or last_model < last_tool:
        return None
    if isinstance(error, SystemExit):
        return f"{model} called sys.exit({error.code!r}) while running; a model must not end the program"
    what = "raised KeyboardInterrupt" if isinstance(error, KeyboardInterrupt) else "failed"
    return f"{model} {what} while running: {type(error).__name__}: {_first_line(error)}"


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
    """Call a builder on ``device``, fenced (``run_user_code``); its failures become one-line errors
    naming the argument.

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
    return run_user_code(where, lambda: _call_unfenced(builder, kwargs, where=where, device=device))


def _call_unfenced(
    builder: Callable[..., Any], kwargs: dict[str, Any], *, where: str, device: str
) -> nn.Module:
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
    if "pretrained" in kwargs and kwargs.pop("pretrained"):
        raise UserInputError(f"{where}: pretrained=True would download weights; senet-profile never does")
    module = _call(lambda **kw: timm.create_model(source.name, pretrained=False, **kw), kwargs, where=where,
                   device=device)  # fmt: skip
    _remember(str(source), module, os.path.dirname(os.path.abspath(timm.__file__)))
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
    where = f"torchvision:{source.name}"
    kwargs = {k: literal(v) for k, v in source.kwargs}
    given = [key for key in _NO_WEIGHTS if kwargs.get(key) is not None]
    if given:
        raise UserInputError(
            f"{where}: {given[0]}={kwargs[given[0]]!r} would load downloaded weights; senet-profile never "
            f"downloads (drop {given[0]}=...)"
        )
    parameters = _parameters(builder)
    forced = {key: None for key in _NO_WEIGHTS if parameters is None or key in parameters}
    module = _call(builder, {**kwargs, **forced}, where=where, device=device)
    import torchvision

    _remember(str(source), module, os.path.dirname(os.path.abspath(torchvision.__file__)))
    return Built(str(source), module, _torchvision_size(models, source.name))


def _torchvision_size(models: Any, name: str) -> tuple[int, int] | None:
    """A torchvision model's own input size: its default weights' crop (inception_v3: 299), if it has one."""
    try:
        crop = getattr(models.get_model_weights(name).DEFAULT.transforms(), "crop_size", None)
    except (ValueError, AttributeError, TypeError):  # a model without weights (or a changed API)
        return None
    return (int(crop[0]), int(crop[-1])) if crop else None


def _parameters(builder: Callable[..., Any]) -> set[str] | None:
    """The keyword names ``builder`` takes; None when it takes any (``**kwargs``) or cannot be read."""
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return set(parameters) | set(_NO_WEIGHTS[:1])
    return set(parameters)


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
        loader = spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            run_user_code(f"{location} (loading it)", lambda: loader.exec_module(module))
        except BaseException:
            del sys.modules[module_name]
            raise
    else:
        try:
            module = run_user_code(f"{location} (importing it)", lambda: _import(location))
        except ModuleNotFoundError as error:
            raise UserInputError(f"cannot import {location!r}: no module named {error.name!r}") from None
    builder = getattr(module, function, None)
    if builder is None:
        public = [n for n in dir(module) if not n.startswith("_")]
        raise UserInputError(f"{location} has no function {function!r}{_close(function, public)}")
    if not callable(builder):
        raise UserInputError(f"{target} is a {type(builder).__name__}, not a function")
    return builder


def _import(location: str) -> Any:
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as error:
        if error.name and location.startswith(error.name):
            raise UserInputError(f"cannot import {location!r}: no module named {error.name!r}") from None
        raise


def _build_function(source: Source, device: str) -> Built:
    builder = _load_function(source.name)
    kwargs = {k: literal(v) for k, v in source.kwargs}
    module = _call(builder, kwargs, where=source.name, device=device)
    with contextlib.suppress(TypeError, OSError):
        _remember(str(source), module, os.path.abspath(inspect.getfile(builder)))
    return Built(str(source), module)


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
    from senet_profile.catalog.registry import check_device

    source = parse_source(text) if isinstance(text, str) else text
    check_device(device)
    return _BUILDERS[source.kind](source, device)


def check_source(source: Source) -> None:
    """Check a model argument without running any of its code: a timm or torchvision name against its
    library's list, a ``file.py:function``'s file for existence; UserInputError (one line) otherwise."""
    if source.kind in ("timm", "torchvision"):
        if source.kind == "timm":
            names = list(_timm().list_models())
        else:
            from torchvision import models

            names = list(models.list_models())
        if source.name not in names:
            hint = _close(source.name, names, listing=source.kind)
            raise UserInputError(f"unknown {source.kind} model {source.name!r}{hint}")
    if source.kind == "timm" and any(k == "pretrained" and literal(v) for k, v in source.kwargs):
        raise UserInputError(
            f"timm:{source.name}: pretrained=True would download weights; senet-profile never does"
        )
    if source.kind == "torchvision":
        given = [key for key, value in source.kwargs if key in _NO_WEIGHTS and literal(value) is not None]
        if given:
            raise UserInputError(f"torchvision:{source.name}: {given[0]}=... would load downloaded weights; "
                                 f"senet-profile never downloads (drop {given[0]}=...)")  # fmt: skip
    elif source.kind == "function":
        location = source.name.rpartition(":")[0]
        if location.endswith(".py") and not Path(location).is_file():
            raise UserInputError(f"no such file {location!r} (in {source.name!r})")


def list_source(source: str, pattern: str = "*") -> list[str]:
    """The model names ``source`` (timm or torchvision) offers that match a shell-style ``pattern``."""
    if source == "timm":
        return list(_timm().list_models(pattern))
    if source == "torchvision":
        from torchvision import models

        return sorted(n for n in models.list_models() if fnmatch.fnmatchcase(n, pattern))
    raise UserInputError(f"unknown source {source!r}; choose one of catalog, timm, torchvision")
