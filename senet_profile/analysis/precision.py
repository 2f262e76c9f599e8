"""The math a run is in: fp32's matmul/conv math chosen (``fp32_math``) and named from torch's flags.

PyTorch runs "fp32" cuDNN convolutions in TF32 by default (``torch.backends.cudnn.allow_tf32`` is True)
while CUDA matmuls stay IEEE fp32; on an H200 SE-ResNet-50's overhead at batch 256 was about 19 % with TF32
convolutions and about 11 % with IEEE ones, so a figure must say which it ran in. ``math`` is one of:

- ``default``: PyTorch's own flags, left as they are (and named as they are found);
- ``ieee``: TF32 off for cuDNN convolutions and CUDA matmuls;
- ``tf32``: TF32 on for both.

Where torch has the newer ``fp32_precision`` properties (2.9 and later) they are used, and only they: mixing
them with the legacy ``allow_tf32`` flags makes torch refuse to read the flags. ``precision_label`` reads
the flags in force when it is called, so call it inside the run it labels. On the CPU, fp32 is IEEE fp32:
the flags only act on CUDA.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, cast

import torch

from senet_profile.errors import UserInputError
from senet_profile.setting import DTYPE_NAMES as DTYPES
from senet_profile.setting import MATHS


class _Fp32Precision(Protocol):
    """A torch backend with the ``fp32_precision`` property (torch 2.9 and later)."""

    fp32_precision: str


def _conv() -> _Fp32Precision:
    """cuDNN convolutions' settings (``torch.backends.cudnn.conv``, new API only)."""
    # torch sets ``conv`` on the cudnn module at import; its type hints do not declare it
    return cast(_Fp32Precision, torch.backends.cudnn.conv)  # type: ignore[attr-defined]


def _all() -> _Fp32Precision:
    """The backends' common setting (``torch.backends.fp32_precision``, new API only)."""
    # a property of torch.backends' module class, missing from its type hints
    return cast(_Fp32Precision, torch.backends)


def _new_api() -> bool:
    """Whether this torch has the ``fp32_precision`` properties (cuDNN conv and CUDA matmul)."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    return conv is not None and hasattr(conv, "fp32_precision")


def check_math(math: str) -> str:
    """``math`` if it is one of ``MATHS``; else a one-line UserInputError."""
    if math not in MATHS:
        raise UserInputError(f"unknown math {math!r}; choose one of {', '.join(MATHS)}")
    return math


def tf32_in_force() -> tuple[bool, bool]:
    """Whether (cuDNN convolutions, CUDA matmuls) run fp32 in TF32 under the flags in force now."""
    backends = torch.backends
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy getters warn on some versions
        if _new_api():
            conv = _conv().fp32_precision
            if conv == "none":
                conv = backends.cudnn.fp32_precision
            if conv == "none":
                conv = _all().fp32_precision
            matmul = backends.cuda.matmul.fp32_precision
            if matmul == "none":
                matmul = _all().fp32_precision
            matmul_tf32 = matmul == "tf32" or (
                matmul == "none" and torch.get_float32_matmul_precision() != "highest"
            )
            return conv == "tf32", matmul_tf32
        return bool(backends.cudnn.allow_tf32), bool(backends.cuda.matmul.allow_tf32)


def _set(conv: str, matmul: str) -> None:
    """Set the fp32 precision of cuDNN convolutions and CUDA matmuls (``tf32`` or ``ieee``)."""
    backends = torch.backends
    if _new_api():
        _conv().fp32_precision = conv
        backends.cuda.matmul.fp32_precision = matmul
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backends.cudnn.allow_tf32 = conv == "tf32"
        backends.cuda.matmul.allow_tf32 = matmul == "tf32"


@contextmanager
def fp32_math(math: str) -> Iterator[None]:
    """Run fp32 convolutions and matmuls in ``math`` (``default`` changes nothing); flags restored after."""
    check_math(math)
    if math == "default":
        yield
        return
    backends = torch.backends
    if _new_api():
        before = (_conv().fp32_precision, backends.cuda.matmul.fp32_precision)
    else:
        conv_tf32, matmul_tf32 = tf32_in_force()
        before = ("tf32" if conv_tf32 else "ieee", "tf32" if matmul_tf32 else "ieee")
    _set(math, math)
    try:
        yield
    finally:
        if _new_api():
            _conv().fp32_precision, backends.cuda.matmul.fp32_precision = before
        else:
            _set(*before)


def is_pytorch_default(conv_tf32: bool, matmul_tf32: bool) -> bool:
    """Whether these flags are PyTorch's defaults: TF32 convolutions, IEEE fp32 matmuls."""
    return conv_tf32 and not matmul_tf32


def precision_label(*, device: str, dtype: str, channels_last: bool) -> str:
    """The math in force now, named: ``IEEE fp32``, ``TF32``, ``bf16``... and ``, channels-last``."""
    if dtype not in DTYPES:
        raise UserInputError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype != "fp32":
        label = dtype
    elif device != "cuda":
        label = "IEEE fp32"
    else:
        conv, matmul = tf32_in_force()
        if conv and matmul:
            label = "TF32"
        elif not conv and not matmul:
            label = "IEEE fp32"
        else:
            label = (
                f"{'TF32' if conv else 'IEEE fp32'} convolutions, {'TF32' if matmul else 'IEEE fp32'} matmuls"
            )
            if is_pytorch_default(conv, matmul):
                label += " (PyTorch's default)"
    return label + (", channels-last" if channels_last else "")


def resolve_dtype(dtype: str, math: str) -> tuple[str, str]:
    """``(dtype, math)`` with ``tf32`` as a dtype read as fp32 in TF32 math (refused beside another math)."""
    check_math(math)
    if dtype != "tf32":
        return dtype, math
    if math not in ("default", "tf32"):
        raise UserInputError(f"--dtype tf32 means fp32 with --math tf32; it contradicts --math {math}")
    return "fp32", "tf32"
