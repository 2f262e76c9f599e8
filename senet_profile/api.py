"""The Python API: what the command line, the bench and sweeps measure through, and what users call.

``profile`` and ``compare`` return pandas DataFrames of metric records; ``explain`` and ``explain_memory``
return results that render themselves. A model is a model argument (``"se_resnet50:r=8"``,
``"timm:seresnet50"``, ``"torchvision:mobilenet_v3_large"``, ``"pkg.mod:build"``, ``"file.py:build"``), a
parsed ``ModelSpec``, or any ``torch.nn.Module`` a user built; where and how it is measured is one
``Setting``. Records keep raw integers and seconds; scaling and rounding happen only in the reporter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and readers only
    from senet_profile.analysis.crosscheck import ToolCount
    from senet_profile.analysis.intervals import MIN_CI_SAMPLES
    from senet_profile.analysis.metrics import PAIRED_LABEL
    from senet_profile.analysis.profiler_trace import DEFAULT_FORWARDS as TRACE_FORWARDS
    from senet_profile.analysis.profiler_trace import write_trace
    from senet_profile.analysis.roofline import MachineModel
    from senet_profile.analysis.static import CONVENTION, analyze
    from senet_profile.catalog.attach import add_se, remove_attention, remove_se
    from senet_profile.catalog.attention import parse_attention_classes
    from senet_profile.catalog.index import attention_rows, check_family
    from senet_profile.catalog.index import find as find_in_catalog
    from senet_profile.catalog.registry import get_model, list_models, parse_model_spec, register
    from senet_profile.catalog.se import SEConfig
    from senet_profile.catalog.sources import Built, guarded_stdout, list_source, model_failure, watch_sigint
    from senet_profile.catalog.spec import ModelSpec
    from senet_profile.measure.core import (
        COMPARE_COLUMNS,
        PROFILE_COLUMNS,
        STATIC_METRICS,
        UncountedOpWarning,
        by_module,
        by_op,
        check_runs,
        compare,
        crosscheck_records,
        explain_tool,
        latency_notes,
        pair_records,
        profile,
        resolve_model,
        setting_of,
        side_by_side,
        time_pair,
    )
    from senet_profile.measure.explaining import (
        Explanation,
        MemoryExplanation,
        check_explain_setting,
        explain,
        explain_memory,
        machine_model,
    )
    from senet_profile.measure.resolve import Model, canonical_name, check_model_argument, resolve
    from senet_profile.setting import (
        DEFAULT_INPUT_SIZE,
        METHOD_VERSION,
        Setting,
        check_metrics,
        input_size_of,
        overhead_pct,
        parse_input_size,
        parse_metrics,
    )

# Where each public name lives: (module, name there). Imported on first use (PEP 562), so that a
# command needing only light names (the catalog's index, the setting) does not pay for torch and pandas.
_HOMES: dict[str, tuple[str, str]] = {
    "COMPARE_COLUMNS": ("senet_profile.measure.core", "COMPARE_COLUMNS"),
    "CONVENTION": ("senet_profile.analysis.static", "CONVENTION"),
    "DEFAULT_INPUT_SIZE": ("senet_profile.setting", "DEFAULT_INPUT_SIZE"),
    "METHOD_VERSION": ("senet_profile.setting", "METHOD_VERSION"),
    "PAIRED_LABEL": ("senet_profile.analysis.metrics", "PAIRED_LABEL"),
    "PROFILE_COLUMNS": ("senet_profile.measure.core", "PROFILE_COLUMNS"),
    "STATIC_METRICS": ("senet_profile.measure.core", "STATIC_METRICS"),
    "Built": ("senet_profile.catalog.sources", "Built"),
    "Explanation": ("senet_profile.measure.explaining", "Explanation"),
    "MachineModel": ("senet_profile.analysis.roofline", "MachineModel"),
    "MemoryExplanation": ("senet_profile.measure.explaining", "MemoryExplanation"),
    "Model": ("senet_profile.measure.resolve", "Model"),
    "ModelSpec": ("senet_profile.catalog.spec", "ModelSpec"),
    "SEConfig": ("senet_profile.catalog.se", "SEConfig"),
    "Setting": ("senet_profile.setting", "Setting"),
    "ToolCount": ("senet_profile.analysis.crosscheck", "ToolCount"),
    "UncountedOpWarning": ("senet_profile.measure.core", "UncountedOpWarning"),
    "add_se": ("senet_profile.catalog.attach", "add_se"),
    "analyze": ("senet_profile.analysis.static", "analyze"),
    "by_module": ("senet_profile.measure.core", "by_module"),
    "by_op": ("senet_profile.measure.core", "by_op"),
    "canonical_name": ("senet_profile.measure.resolve", "canonical_name"),
    "check_explain_setting": ("senet_profile.measure.explaining", "check_explain_setting"),
    "check_metrics": ("senet_profile.setting", "check_metrics"),
    "check_model_argument": ("senet_profile.measure.resolve", "check_model_argument"),
    "check_runs": ("senet_profile.measure.core", "check_runs"),
    "compare": ("senet_profile.measure.core", "compare"),
    "crosscheck_records": ("senet_profile.measure.core", "crosscheck_records"),
    "explain": ("senet_profile.measure.explaining", "explain"),
    "explain_memory": ("senet_profile.measure.explaining", "explain_memory"),
    "explain_tool": ("senet_profile.measure.core", "explain_tool"),
    "attention_rows": ("senet_profile.catalog.index", "attention_rows"),
    "check_family": ("senet_profile.catalog.index", "check_family"),
    "find_in_catalog": ("senet_profile.catalog.index", "find"),
    "get_model": ("senet_profile.catalog.registry", "get_model"),
    "input_size_of": ("senet_profile.setting", "input_size_of"),
    "latency_notes": ("senet_profile.measure.core", "latency_notes"),
    "list_models": ("senet_profile.catalog.registry", "list_models"),
    "list_source": ("senet_profile.catalog.sources", "list_source"),
    "machine_model": ("senet_profile.measure.explaining", "machine_model"),
    "overhead_pct": ("senet_profile.setting", "overhead_pct"),
    "pair_records": ("senet_profile.measure.core", "pair_records"),
    "parse_attention_classes": ("senet_profile.catalog.attention", "parse_attention_classes"),
    "parse_input_size": ("senet_profile.setting", "parse_input_size"),
    "parse_metrics": ("senet_profile.setting", "parse_metrics"),
    "parse_model_spec": ("senet_profile.catalog.registry", "parse_model_spec"),
    "profile": ("senet_profile.measure.core", "profile"),
    "register": ("senet_profile.catalog.registry", "register"),
    "remove_attention": ("senet_profile.catalog.attach", "remove_attention"),
    "remove_se": ("senet_profile.catalog.attach", "remove_se"),
    "resolve": ("senet_profile.measure.resolve", "resolve"),
    "resolve_model": ("senet_profile.measure.core", "resolve_model"),
    "setting_of": ("senet_profile.measure.core", "setting_of"),
    "side_by_side": ("senet_profile.measure.core", "side_by_side"),
    "time_pair": ("senet_profile.measure.core", "time_pair"),
    "guarded_stdout": ("senet_profile.catalog.sources", "guarded_stdout"),
    "model_failure": ("senet_profile.catalog.sources", "model_failure"),
    "watch_sigint": ("senet_profile.catalog.sources", "watch_sigint"),
    "MIN_CI_SAMPLES": ("senet_profile.analysis.intervals", "MIN_CI_SAMPLES"),
    "write_trace": ("senet_profile.analysis.profiler_trace", "write_trace"),
    "TRACE_FORWARDS": ("senet_profile.analysis.profiler_trace", "DEFAULT_FORWARDS"),
}
__all__ = [
    "COMPARE_COLUMNS",
    "CONVENTION",
    "DEFAULT_INPUT_SIZE",
    "METHOD_VERSION",
    "MIN_CI_SAMPLES",
    "PAIRED_LABEL",
    "PROFILE_COLUMNS",
    "STATIC_METRICS",
    "TRACE_FORWARDS",
    "Built",
    "Explanation",
    "MachineModel",
    "MemoryExplanation",
    "Model",
    "ModelSpec",
    "SEConfig",
    "Setting",
    "ToolCount",
    "UncountedOpWarning",
    "add_se",
    "analyze",
    "attention_rows",
    "by_module",
    "by_op",
    "canonical_name",
    "check_explain_setting",
    "check_family",
    "check_metrics",
    "check_model_argument",
    "check_runs",
    "compare",
    "crosscheck_records",
    "explain",
    "explain_memory",
    "explain_tool",
    "find_in_catalog",
    "get_model",
    "guarded_stdout",
    "input_size_of",
    "latency_notes",
    "list_models",
    "list_source",
    "machine_model",
    "model_failure",
    "overhead_pct",
    "pair_records",
    "parse_attention_classes",
    "parse_input_size",
    "parse_metrics",
    "parse_model_spec",
    "profile",
    "register",
    "remove_attention",
    "remove_se",
    "resolve",
    "resolve_model",
    "setting_of",
    "side_by_side",
    "time_pair",
    "watch_sigint",
    "write_trace",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its home the first time it is asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module 'senet_profile.api' has no attribute {name!r}")
    module, attribute = _HOMES[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
