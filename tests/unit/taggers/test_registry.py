"""Registry names and sources, third-party registration (conftest hook, entry point), and the
``tagger-showdown taggers`` listing."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from pytest_tagger_showdown import Post, TagCategory, default_registry, load_tagger
from pytest_tagger_showdown.cli import main
from pytest_tagger_showdown.taggers import hub
from pytest_tagger_showdown.taggers.registry import ENTRY_POINT_GROUP
from tests.fakes.hub import VIT_V2_REPO, FakeHub
from tests.fakes.loopback import closed_port_url
from tests.fakes.sdwebui import FakeWebui
from tests.helpers.datasets import four_ratings

#: REFERENCE section 2: the webui extension's names, and the later models.
EXPECTED_HUB_MODELS = {
    "wd14-vit-v2": ("SmilingWolf/wd-v1-4-vit-tagger-v2", "v2.0"),
    "wd14-convnext-v2": ("SmilingWolf/wd-v1-4-convnext-tagger-v2", "v2.0"),
    "wd14-convnextv2-v2": ("SmilingWolf/wd-v1-4-convnextv2-tagger-v2", "v2.0"),
    "wd14-swinv2-v2": ("SmilingWolf/wd-v1-4-swinv2-tagger-v2", "v2.0"),
    "wd14-vit-v2-git": ("SmilingWolf/wd-v1-4-vit-tagger-v2", "main"),
    "wd14-convnext-v2-git": ("SmilingWolf/wd-v1-4-convnext-tagger-v2", "main"),
    "wd14-convnextv2-v2-git": ("SmilingWolf/wd-v1-4-convnextv2-tagger-v2", "main"),
    "wd14-swinv2-v2-git": ("SmilingWolf/wd-v1-4-swinv2-tagger-v2", "main"),
    "wd14-vit": ("SmilingWolf/wd-v1-4-vit-tagger", "main"),
    "wd14-convnext": ("SmilingWolf/wd-v1-4-convnext-tagger", "main"),
    "wd14-moat-v2": ("SmilingWolf/wd-v1-4-moat-tagger-v2", "v2.0"),
    "wd-vit-v3": ("SmilingWolf/wd-vit-tagger-v3", "main"),
    "wd-swinv2-v3": ("SmilingWolf/wd-swinv2-tagger-v3", "main"),
    "wd-convnext-v3": ("SmilingWolf/wd-convnext-tagger-v3", "main"),
    "wd-vit-large-v3": ("SmilingWolf/wd-vit-large-tagger-v3", "main"),
    "wd-eva02-large-v3": ("SmilingWolf/wd-eva02-large-tagger-v3", "main"),
}


def test_every_hub_model_is_registered_with_its_repo_and_revision() -> None:
    registry = default_registry()
    found = {spec.name: (spec.source, spec.revision) for spec in registry if spec.backend == hub.BACKEND}
    assert found == EXPECTED_HUB_MODELS
    for name in EXPECTED_HUB_MODELS:
        thresholds = registry.resolve(name).thresholds
        assert (thresholds.general, thresholds.character, thresholds.mcut) == (0.35, 0.85, False)


def test_prefixes_and_remote_names_resolve() -> None:
    registry = default_registry()
    assert {"onnx", "deepdanbooru", "sdwebui"} <= set(registry.prefixes())
    assert registry.resolve("sdwebui:wd14-vit-v2-git").options == {"model": "wd14-vit-v2-git"}
    assert registry.resolve("deepdanbooru:/models/dd").source == "/models/dd"
    assert registry.resolve("deepdanbooru:/models/dd").preprocessing.channel_order == "RGB"
    assert registry.resolve("hydrus-dd").backend == "hydrus-dd"


def test_a_conftest_registers_its_own_tagger(pytester: pytest.Pytester) -> None:
    db = four_ratings(pytester.path / "data.db")
    pytester.makeconftest(
        """
        from pytest_tagger_showdown import TaggerSpec

        def pytest_tagger_showdown_register(registry, config):
            registry.register(TaggerSpec(name="house-tagger", backend="control", description="ours"))
            registry.register_prefix("house", lambda arg: TaggerSpec(name=f"house:{arg}", backend="control"))
        """
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--tagger", "house-tagger,house:variant", "--showdown-db", str(db)
    )
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["*house-tagger*1.000*", "*house:variant*1.000*"])


def test_the_taggers_command_lists_what_the_rootdir_conftest_registers(pytester: pytest.Pytester) -> None:
    """As a run in that folder would see them (the command used to list built-in taggers only)."""
    pytester.makeconftest(
        """
        from pytest_tagger_showdown import TaggerSpec

        def pytest_tagger_showdown_register(registry, config):
            registry.register(TaggerSpec(name="house-tagger", backend="control", description="ours"))
        """
    )
    result = pytester.run(sys.executable, "-m", "pytest_tagger_showdown.cli", "taggers", "house-*")
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["| house-tagger *| control *| built in *| yes *| ours *|"])
    assert result.stderr.str() == ""


#: A third-party backend as a plugin would write it: a tagger class over TaggerBase, a loader, a check.
THIRD_PARTY_BACKEND = """
from pytest_tagger_showdown import Prediction, TaggerSpec
from pytest_tagger_showdown.taggers import TaggerBase


class EchoTagger(TaggerBase):
    \"\"\"Answers each post's own tags plus the tag its spec's source names (a real, if simple, model).\"\"\"

    def __init__(self, spec):
        self.spec = spec

    def prepare(self, post, image):
        return post

    def infer(self, batch):
        tags = [{**dict.fromkeys(post.tags, 1.0), self.spec.source: 1.0} for post in batch]
        return [Prediction(tags=kept, rating=post.rating) for kept, post in zip(tags, batch)]


def load(spec, options):
    return EchoTagger(spec)


def unavailable(spec):
    return None if spec.source else "echo needs a tag as its source"


def register(registry, config=None):
    registry.register_backend("echo", load, unavailable)
    registry.register(TaggerSpec(name="echo-extra", backend="echo", source="extra_tag", description="echo"))
    registry.register(TaggerSpec(name="echo-broken", backend="echo", description="no source"))
"""


def test_a_conftest_registers_a_backend_through_the_same_hook(pytester: pytest.Pytester) -> None:
    db = four_ratings(pytester.path / "data.db")
    pytester.makepyfile(echo_backend=THIRD_PARTY_BACKEND)
    pytester.makeconftest(
        """
        import echo_backend

        def pytest_tagger_showdown_register(registry, config):
            echo_backend.register(registry, config)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--tagger", "all", "--showdown-db", str(db))
    # 'all' keeps what can run here: echo-extra and the built-in taggers, not echo-broken.
    rows = {line.split("|")[1].strip(): line for line in result.outlines if line.startswith("| ")}
    assert {"control", "echo-extra"} <= set(rows)
    assert "echo-broken" not in rows
    result.assert_outcomes(passed=8 * (len(rows) - 1))
    # Each post's 4 tags and rating right plus one extra tag, against 5 of truth: (5 - 1) / 5.
    assert "| 0.800 " in rows["echo-extra"]


@pytest.fixture
def entry_point_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed distribution (a dist-info on sys.path) whose entry point registers a tagger."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "showdown_thirdparty.py").write_text(
        textwrap.dedent(
            """
            from pytest_tagger_showdown import TaggerSpec

            def register(registry):
                registry.register(
                    TaggerSpec(name="thirdparty-control", backend="control", source="thirdparty:builtin")
                )
            """
        )
    )
    (site / "echo_backend.py").write_text(THIRD_PARTY_BACKEND)
    dist_info = site / "showdown_thirdparty-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: showdown-thirdparty\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nthirdparty = showdown_thirdparty:register\necho = echo_backend:register\n"
    )
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_installed_package_registers_by_entry_point(
    entry_point_package: Path, pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = default_registry().resolve("thirdparty-control")
    assert spec.source == "thirdparty:builtin"
    assert load_tagger(spec).spec.name == "thirdparty-control"

    echo = default_registry().resolve("echo-extra")
    post = Post(id=1, md5="0" * 32, rating="g", file_ext="png", tags={"1girl": TagCategory.GENERAL})
    assert load_tagger(echo).infer([post])[0].tags == {"1girl": 1.0, "extra_tag": 1.0}

    rows = _listing(capsys)
    assert rows["thirdparty-control"][0] == "control"
    assert rows["echo-extra"] == ["echo", "extra_tag", "yes"]
    assert rows["echo-broken"] == ["echo", "-", "no: echo needs a tag as its source"]

    db = four_ratings(pytester.path / "data.db")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--tagger", "thirdparty-control,echo-extra", "--showdown-db", str(db)
    )
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["*| echo-extra * 0.800 *"])


def _table(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, list[str]]:
    """``tagger-showdown taggers ARGS`` as cells by tagger name, in printed order."""
    assert main(["taggers", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [cell.strip() for cell in lines[0].strip("|").split("|")] == [
        "tagger",
        "backend",
        "source",
        "can run here",
        "description",
    ]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return {row[0]: row[1:] for row in rows}


def _listing(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, list[str]]:
    """Backend, source and verdict by tagger name."""
    return {name: cells[:3] for name, cells in _table(capsys, *args).items()}


def test_taggers_command_lists_sources_and_what_can_run(
    fake_hub: FakeHub,
    wd14_files: dict[str, bytes],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SDWEBUI_URL", "HYDRUS_DD_URL", "SDWEBUI_AUTH"):
        monkeypatch.delenv(name, raising=False)
    fake_hub.add_commit(VIT_V2_REPO, wd14_files, refs=("v2.0",))
    load_tagger(default_registry().resolve("wd14-vit-v2"))

    rows = _listing(capsys)
    assert rows["control"] == ["control", "built in", "yes"]
    assert rows["wd14-vit-v2"] == ["wd14-hub", "SmilingWolf/wd-v1-4-vit-tagger-v2@v2.0", "yes"]
    _backend, source, verdict = rows["wd14-vit-v2-git"]
    assert source == "SmilingWolf/wd-v1-4-vit-tagger-v2@main"
    assert verdict.startswith("no: ")
    assert "not downloaded yet" in verdict
    assert set(EXPECTED_HUB_MODELS) <= set(rows)
    assert rows["hydrus-dd"] == [
        "hydrus-dd",
        "-",
        "no: no server URL: pass --hydrus-dd-url or set HYDRUS_DD_URL",
    ]
    assert rows["onnx:PATH"] == ["onnx", "PATH", "given a PATH"]
    assert rows["deepdanbooru:PATH"][0] == "deepdanbooru"
    assert rows["sdwebui:MODEL"][2].startswith("no: no server URL")

    with FakeWebui() as webui:
        rows = _listing(capsys, "--sdwebui-url", webui.url, "--hydrus-dd-url", "http://127.0.0.1:4443")
    assert rows["sdwebui:wd14-vit-v2-git"] == ["sdwebui", webui.url, "yes"]
    assert rows["hydrus-dd"] == ["hydrus-dd", "http://127.0.0.1:4443", "yes"]

    down = closed_port_url()
    rows = _listing(capsys, "--sdwebui-url", down)
    assert rows["sdwebui:MODEL"][1] == down
    assert "cannot reach the server" in rows["sdwebui:MODEL"][2]


def test_tagger_option_takes_glob_patterns(pytester: pytest.Pytester) -> None:
    db = four_ratings(pytester.path / "data.db")
    common = ("-p", "no:cacheprovider", "--showdown-db", str(db))
    result = pytester.runpytest(*common, "--tagger", "demo-*,control")
    result.assert_outcomes(passed=24)
    result.stdout.fnmatch_lines(["*taggers: demo-large, demo-small, control;*"])

    result = pytester.runpytest(*common, "--tagger", "demo-*-v3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    message = "no tagger matches the pattern 'demo-*-v3'; close names: demo-large, demo-small, *"
    result.stderr.fnmatch_lines([f"ERROR: tagger-showdown: {message}"])


def test_taggers_command_shows_descriptions_and_filters_by_pattern(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = _table(capsys, "demo-*", "contr?l")
    assert list(rows) == ["control", "demo-large", "demo-small"]
    assert rows["control"][3] == "answers each post's own tags; must score exactly 1.0 (checks the scoring)"
    assert rows["demo-small"][3] == "demo: a linear model on 4x4 pooled pixels (the weaker demo tagger)"
    assert list(_table(capsys, "sdwebui:*")) == ["sdwebui:MODEL"]

    assert main(["taggers", "wd-*-v4"]) == 2
    assert capsys.readouterr().err.startswith(
        "tagger-showdown: error: no tagger matches the pattern 'wd-*-v4'; close names: wd-convnext-v3, "
    )
