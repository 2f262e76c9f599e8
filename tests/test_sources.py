"""Model sources: catalog, timm, torchvision, package.module:function and file.py:function, and bad input."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from senet_profile import api
from senet_profile.catalog.sources import Source, build, literal, parse_source
from senet_profile.cli import app

HERE = Path(__file__).parent
SMALL_CNN = str(HERE / "small_cnn.py")

timm = pytest.importorskip("timm")


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


def by_metric(frame) -> dict[str, int]:
    return dict(zip(frame["metric"], frame["value"], strict=True))


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("se_resnet50", Source("catalog", "se_resnet50")),
        ("se_resnet50:r=8", Source("catalog", "se_resnet50", (("r", "8"),))),
        ("timm:seresnet50", Source("timm", "seresnet50")),
        ("timm:seresnet50:drop_rate=0.1", Source("timm", "seresnet50", (("drop_rate", "0.1"),))),
        ("torchvision:resnet18", Source("torchvision", "resnet18")),
        ("pkg.mod:fn", Source("function", "pkg.mod:fn")),
        ("pkg.mod:fn:a=1,b=x", Source("function", "pkg.mod:fn", (("a", "1"), ("b", "x")))),
        ("dir/file.py:fn:se=on", Source("function", "dir/file.py:fn", (("se", "on"),))),
        ("dir\\file.py:fn:se=on", Source("function", "dir\\file.py:fn", (("se", "on"),))),
        ("C:\\dir\\file.py:fn", Source("function", "C:\\dir\\file.py:fn")),
        ("d:/dir/file.py:fn:a=1,b=x", Source("function", "d:/dir/file.py:fn", (("a", "1"), ("b", "x")))),
    ],
)
def test_parse_source(text: str, source: Source) -> None:
    assert parse_source(text) == source
    assert str(parse_source(text)) == text


@pytest.mark.parametrize(
    ("text", "value"), [("3", 3), ("0.5", 0.5), ("on", True), ("off", False), ("none", None), ("abc", "abc")]
)
def test_keyword_values_are_literals(text: str, value: object) -> None:
    assert literal(text) == value


def test_catalog_source_keeps_its_canonical_name() -> None:
    built = build("se_resnet18:r=16,bias=on")
    assert built.name == "se_resnet18"
    assert built.input_size is None


def test_timm_model_counts_and_default_input_size() -> None:
    frame = api.profile("timm:test_efficientnet")
    assert frame.attrs["input_shape"] == [1, 3, 160, 160]  # its pretrained_cfg, not 224
    model = timm.create_model("test_efficientnet")
    rows = by_metric(frame)
    assert rows["params"] == sum(p.numel() for p in model.parameters())
    assert rows["params_se"] > 0  # timm's SqueezeExcite is SE


def test_timm_keyword_arguments_reach_the_model() -> None:
    rows = by_metric(api.profile("timm:test_resnet:num_classes=3", input_size=(32, 32)))
    assert rows["params"] == sum(
        p.numel() for p in timm.create_model("test_resnet", num_classes=3).parameters()
    )


def test_input_size_overrides_the_timm_default() -> None:
    assert api.profile("timm:test_resnet", input_size=(64, 48)).attrs["input_shape"] == [1, 3, 64, 48]


def test_torchvision_source_matches_torchvision() -> None:
    import torchvision

    rows = by_metric(api.profile("torchvision:resnet18", input_size=(64, 64)))
    assert rows["params"] == sum(p.numel() for p in torchvision.models.resnet18().parameters())


def test_module_function_builder(on_path: None) -> None:
    rows = by_metric(api.profile("small_cnn:small_cnn", input_size=(8, 8)))
    # conv: 8x8 positions x 8 outputs x 3x3x3; linear 8 -> 10
    assert rows["macs"] == 8 * 8 * 8 * 27 + 8 * 10
    assert rows["params"] == 3 * 8 * 9 + 8 * 10 + 10
    assert rows["params_se"] == 0


def test_file_function_builder_with_keywords() -> None:
    frame = api.profile(f"{SMALL_CNN}:small_cnn:width=8,se=on", input_size=(8, 8))
    rows = by_metric(frame)
    assert rows["params_se"] == (8 * 2 + 2) + (2 * 8 + 8)  # torchvision SqueezeExcitation(8, 2)
    assert frame.attrs["models"] == [f"{SMALL_CNN}:small_cnn:width=8,se=on"]


@pytest.mark.skipif(sys.platform == "win32", reason="a folder named C: is a drive there")
def test_a_drive_letter_is_part_of_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``C:/dir/file.py:fn`` builds from that file: here a folder named ``C:`` stands in for the drive."""
    (tmp_path / "C:" / "dir").mkdir(parents=True)
    shutil.copy(SMALL_CNN, tmp_path / "C:" / "dir" / "small_cnn.py")
    monkeypatch.chdir(tmp_path)
    frame = api.profile("C:/dir/small_cnn.py:small_cnn:width=8,se=on", input_size=(8, 8))
    assert frame.attrs["models"] == ["C:/dir/small_cnn.py:small_cnn:width=8,se=on"]
    assert by_metric(frame) == by_metric(
        api.profile(f"{SMALL_CNN}:small_cnn:width=8,se=on", input_size=(8, 8))
    )


def test_name_labels_models(on_path: None) -> None:
    frame = api.compare(
        timm.create_model("test_resnet"), timm.create_model("test_resnet"), input_size=(32, 32)
    )
    assert frame.attrs["models"] == ["ResNet (base)", "ResNet (candidate)"]
    named = api.compare("small_cnn:small_cnn", "small_cnn:small_cnn:se=on", names=("plain", "se"))
    assert named.attrs["models"] == ["plain", "se"]


def test_several_models_in_one_profile_make_one_wide_table(on_path: None) -> None:
    result = CliRunner().invoke(
        app,
        [
            "profile",
            "small_cnn:small_cnn",
            f"{SMALL_CNN}:small_cnn:se=on",
            "--input-size",
            "8",
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[0].split(",")
    assert header == [
        "metric",
        "unit",
        "scope",
        "source",
        "small_cnn:small_cnn",
        f"{SMALL_CNN}:small_cnn:se=on",
    ]


BAD = [
    (["profile", "timm:nosuchmodel"], "unknown timm model 'nosuchmodel'; closest: "),
    (["profile", "timm:resnet50x"], "closest: resnet50"),
    (["profile", "torchvision:nosuch"], "unknown torchvision model 'nosuch'"),
    (["profile", "nosuchpkg.mod:fn"], "cannot import 'nosuchpkg.mod': no module named 'nosuchpkg'"),
    (["profile", f"{SMALL_CNN}:missing_fn"], "has no function 'missing_fn'"),
    (["profile", "nosuchfile.py:fn"], "no such file 'nosuchfile.py'"),
    (["profile", "C:\\nosuch\\file.py:fn"], "no such file 'C:\\\\nosuch\\\\file.py' (in "),
    (["profile", "C:\\dir\\file.py"], "names a file but no function: give PATH.py:FUNCTION"),
    (["profile", f"{SMALL_CNN}:raises"], "raises failed: RuntimeError: the builder broke"),
    (["profile", f"{SMALL_CNN}:not_a_module"], "returned int, not a torch.nn.Module"),
    (["profile", f"{SMALL_CNN}:small_cnn:depth=3"], "does not take 'depth'; it accepts: width, se, classes"),
    (["profile", "timm:resnet18:foo=1"], "timm:resnet18 does not take 'foo'"),
    (["profile", "torchvision:resnet18:foo=1"], "torchvision:resnet18 does not take 'foo'"),
    (["compare", "timm:resnet18", "timm:nosuchmodel"], "unknown timm model 'nosuchmodel'"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_sources_are_one_line_and_status_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_timm_missing_gives_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` now raises ImportError
    result = CliRunner().invoke(app, ["profile", "timm:resnet18"])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "error: timm is not installed; install it with: pip install 'senet-profile[timm]'"
    )


def test_list_a_source() -> None:
    result = CliRunner().invoke(app, ["list", "--source", "timm", "seresnet5*", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    import json

    names = [row["model"] for row in json.loads(result.stdout)]
    assert "timm:seresnet50" in names and all(n.startswith("timm:seresnet5") for n in names)
