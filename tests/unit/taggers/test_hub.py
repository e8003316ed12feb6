"""WD14 models from the hub: download once through huggingface_hub, cache, offline, errors, model rules.

Every test talks to :class:`tests.fakes.hub.FakeHub` over loopback through ``HF_ENDPOINT``; nothing
replaces huggingface_hub's own code.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest
import requests

from pytest_tagger_showdown import LoadOptions, Post, TagCategory, TaggerLoadError, default_registry
from pytest_tagger_showdown.pool import TaggerPool
from pytest_tagger_showdown.taggers import hub, load_tagger, unavailable_reason
from pytest_tagger_showdown.taggers.wd14 import WD14Tagger, default_providers
from tests.fakes.hub import VIT_V2_REPO, FakeHub, wd14_repo_files
from tests.fakes.loopback import closed_port_url
from tests.helpers.datasets import png_bytes

POST = Post(id=1, md5="0" * 32, rating="g", file_ext="png", tags={"red_background": TagCategory.GENERAL})
RED = png_bytes(colour=(200, 30, 30))
BLUE = png_bytes(colour=(30, 30, 200))


def _load(name: str, **options: object) -> WD14Tagger:
    tagger = load_tagger(default_registry().resolve(name), LoadOptions(**options))  # type: ignore[arg-type]
    assert isinstance(tagger, WD14Tagger)
    return tagger


def _tags(tagger: WD14Tagger, image: bytes) -> set[str]:
    (prediction,) = tagger.infer([tagger.prepare(POST, image)])
    return set(prediction.tags)


def test_downloads_once_then_runs_from_the_cache(fake_hub: FakeHub, wd14_files: dict[str, bytes]) -> None:
    commit = fake_hub.add_commit(VIT_V2_REPO, wd14_files, refs=("v2.0", "main"))
    spec = default_registry().resolve("wd14-vit-v2")
    assert "is not downloaded yet" in (unavailable_reason(spec) or "")

    tagger = _load("wd14-vit-v2")
    assert unavailable_reason(spec) is None
    (prediction,) = tagger.infer([tagger.prepare(POST, RED)])
    assert set(prediction.tags) == {"simple_background", "red_background"}
    assert prediction.rating == "g"
    assert _tags(tagger, BLUE) == {"simple_background", "blue_background"}
    snapshot = hub.cached_folder(spec)
    assert snapshot is not None
    assert snapshot.name == commit
    assert (snapshot / "model.onnx").read_bytes() == wd14_files["model.onnx"]
    assert len(fake_hub.seen("cdn", "GET")) == 1

    _load("wd14-vit-v2")
    assert len(fake_hub.seen("cdn", "GET")) == 1, "a cached model is not downloaded again"


def test_cached_model_loads_offline_and_with_the_hub_down(
    fake_hub: FakeHub, wd14_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_commit(VIT_V2_REPO, wd14_files, refs=("v2.0",))
    _load("wd14-vit-v2")
    requests_before = len(fake_hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _tags(_load("wd14-vit-v2"), RED) == {"simple_background", "red_background"}
    assert len(fake_hub.requests) == requests_before, "offline means no request at all"

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    assert _tags(_load("wd14-vit-v2"), RED) == {"simple_background", "red_background"}


def test_offline_and_not_cached_names_the_repo_and_revision(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TaggerLoadError) as raised:
        _load("wd14-convnext-v2")
    message = str(raised.value)
    assert "SmilingWolf/wd-v1-4-convnext-tagger-v2@v2.0 is not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE" in message
    assert fake_hub.requests == []


def test_an_endpoint_that_is_no_hub_is_a_clear_error(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``HF_ENDPOINT`` at a server that answers without the hub's headers (here: the fake's CDN).

    (A hub that is down ends the same way, after huggingface_hub's own retries of about 20 s.)
    """
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.cdn_url)
    with pytest.raises(TaggerLoadError) as raised:
        _load("wd14-vit-v2")
    message = str(raised.value)
    assert "wd14-vit-v2: SmilingWolf/wd-v1-4-vit-tagger-v2@v2.0 is not in the Hugging Face cache" in message
    assert "cannot be reached" in message


def test_hf_hub_cache_wins_over_hf_home(
    fake_hub: FakeHub, wd14_files: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_commit(VIT_V2_REPO, wd14_files, refs=("v2.0",))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    _load("wd14-vit-v2")
    assert list(
        (tmp_path / "elsewhere").glob("models--SmilingWolf--wd-v1-4-vit-tagger-v2/snapshots/*/model.onnx")
    )


def test_each_name_gets_its_own_revision(fake_hub: FakeHub, wd14_files: dict[str, bytes]) -> None:
    """``wd14-vit-v2`` is the v2.0 tag and ``-git`` the main branch: two commits, two snapshots."""
    tagged = fake_hub.add_commit(VIT_V2_REPO, wd14_files, refs=("v2.0",))
    newer = {**wd14_files, "README.md": b"# updated on main\n"}
    branch = fake_hub.add_commit(VIT_V2_REPO, newer, refs=("main",))
    registry = default_registry()
    _load("wd14-vit-v2")
    _load("wd14-vit-v2-git")
    folders = {hub.cached_folder(registry.resolve(name)) for name in ("wd14-vit-v2", "wd14-vit-v2-git")}
    assert {folder.name for folder in folders if folder} == {tagged, branch}
    model_heads = [s.path for s in fake_hub.seen("hub", "HEAD") if s.path.endswith("model.onnx")]
    assert all(
        f"/resolve/{commit}/" in path for path, commit in zip(model_heads, (tagged, branch), strict=True)
    ), "the model is fetched at the commit the tag list resolved to"


@pytest.mark.parametrize(
    ("setup", "pattern"),
    [
        ("no-repo", r"the hub has no such repository, or it needs a token"),
        ("no-revision", r"the hub has no revision 'v2\.0'"),
        ("no-model", r"lacks model\.onnx or selected_tags\.csv"),
    ],
)
def test_hub_errors_name_the_repo(
    fake_hub: FakeHub, wd14_files: dict[str, bytes], setup: str, pattern: str
) -> None:
    if setup == "no-revision":
        fake_hub.add_commit(VIT_V2_REPO, wd14_files, refs=("main",))
    elif setup == "no-model":
        fake_hub.add_commit(
            VIT_V2_REPO, {"selected_tags.csv": wd14_files["selected_tags.csv"]}, refs=("v2.0",)
        )
    with pytest.raises(
        TaggerLoadError, match=rf"tagger wd14-vit-v2: SmilingWolf/wd-v1-4-vit-tagger-v2@v2\.0.*{pattern}"
    ):
        _load("wd14-vit-v2")


def test_gated_repo_needs_the_token_from_the_environment(
    fake_hub: FakeHub, wd14_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_commit(VIT_V2_REPO, wd14_files, refs=("v2.0",))
    fake_hub.require_token(VIT_V2_REPO, "hf_test_token")
    with pytest.raises(TaggerLoadError, match="needs a token"):
        _load("wd14-vit-v2")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    _load("wd14-vit-v2")
    assert {s.authorization for s in fake_hub.seen("hub")} >= {"Bearer hf_test_token"}
    assert {s.authorization for s in fake_hub.seen("cdn")} == {None}, "the token never leaves the hub"


def test_an_interrupted_download_resumes_with_a_range_request(fake_hub: FakeHub) -> None:
    files = wd14_repo_files(padding=12 * 1024 * 1024)
    fake_hub.add_commit(VIT_V2_REPO, files, refs=("v2.0",))
    fake_hub.truncate_next()
    tagger = _load("wd14-vit-v2")
    gets = fake_hub.seen("cdn", "GET")
    assert gets[0].range is None
    assert gets[1].range is not None
    assert gets[1].range.startswith("bytes=")
    assert gets[1].status == 206
    assert _tags(tagger, RED) == {"simple_background", "red_background"}
    snapshot = hub.cached_folder(default_registry().resolve("wd14-vit-v2"))
    assert snapshot is not None
    digest = hashlib.sha256((snapshot / "model.onnx").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(files["model.onnx"]).hexdigest()


def test_the_fake_cdn_honours_ranges(fake_hub: FakeHub, wd14_files: dict[str, bytes]) -> None:
    fake_hub.add_commit(VIT_V2_REPO, wd14_files)
    sha256 = hashlib.sha256(wd14_files["model.onnx"]).hexdigest()
    answer = requests.get(f"{fake_hub.cdn_url}/lfs/{sha256}", headers={"Range": "bytes=10-19"}, timeout=5)
    assert answer.status_code == 206
    assert answer.content == wd14_files["model.onnx"][10:20]
    assert answer.headers["Content-Range"] == f"bytes 10-19/{len(wd14_files['model.onnx'])}"


def test_a_tag_list_longer_than_the_model_output_is_a_clear_error(fake_hub: FakeHub) -> None:
    fake_hub.add_commit(VIT_V2_REPO, wd14_repo_files(extra_tags=2), refs=("v2.0",))
    with pytest.raises(
        TaggerLoadError, match=r"selected_tags\.csv lists 11 tags but the model has 9 outputs"
    ):
        _load("wd14-vit-v2")


def test_v3_dynamic_batch_and_names_read_from_the_model(fake_hub: FakeHub) -> None:
    fake_hub.add_commit("SmilingWolf/wd-vit-tagger-v3", wd14_repo_files(fixed_batch=None, size=448))
    tagger = _load("wd-vit-v3")
    assert tagger.fixed_batch is None
    assert tagger.size == 448
    predictions = tagger.infer([tagger.prepare(POST, image) for image in (RED, BLUE, RED)])
    assert [set(p.tags) for p in predictions] == [
        {"simple_background", "red_background"},
        {"simple_background", "blue_background"},
        {"simple_background", "red_background"},
    ]


def test_a_reused_batch_buffer_never_leaks_an_earlier_batch(fake_hub: FakeHub) -> None:
    """Batches share one host buffer (issue 14): a shorter batch after a longer one, and a single
    image after both, give what each image gives alone."""
    fake_hub.add_commit("SmilingWolf/wd-vit-tagger-v3", wd14_repo_files(fixed_batch=None, size=448))
    tagger = _load("wd-vit-v3")
    red, blue = tagger.prepare(POST, RED), tagger.prepare(POST, BLUE)
    alone = {"red": set(tagger.infer([red])[0].tags), "blue": set(tagger.infer([blue])[0].tags)}
    assert alone["red"] != alone["blue"]
    for batch, names in (([red, red, red], "rrr"), ([blue, red], "br"), ([blue], "b")):
        got = [set(p.tags) for p in tagger.infer(batch)]
        assert got == [alone["red" if name == "r" else "blue"] for name in names]
    np.testing.assert_array_equal(np.asarray(red), tagger.prepare(POST, RED))  # inputs untouched


def test_fixed_batch_of_one_still_takes_a_batch(fake_hub: FakeHub, wd14_files: dict[str, bytes]) -> None:
    fake_hub.add_commit(VIT_V2_REPO, wd14_files, refs=("v2.0",))
    tagger = _load("wd14-vit-v2")
    assert tagger.fixed_batch == 1
    assert len(tagger.infer([tagger.prepare(POST, RED)] * 3)) == 3


def test_input_size_and_names_come_from_the_model() -> None:
    """A folder whose model takes 224 pixels through differently named tensors (``onnx:PATH``)."""
    from fixtures.generators.onnx_model import Dense, build_wd14_onnx, write_selected_tags

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = write_selected_tags(folder / "selected_tags.csv", ["simple_background"])
        bias = np.full(len(names), 3.0, dtype=np.float32)
        layers = [Dense(np.zeros((3, len(names)), np.float32), bias)]
        build_wd14_onnx(
            folder / "model.onnx",
            layers,
            pool=224,
            size=224,
            input_name="input_1:0",
            output_name="predictions_sigmoid",
        )
        tagger = load_tagger(default_registry().resolve(f"onnx:{folder}"))
        assert isinstance(tagger, WD14Tagger)
        assert tagger.size == 224
        prepared = tagger.prepare(POST, RED)
        assert np.asarray(prepared).shape == (224, 224, 3)
        assert set(tagger.infer([prepared])[0].tags) == {"simple_background"}


def test_thresholds_per_category_with_overrides_and_mcut(
    fake_hub: FakeHub, wd14_files: dict[str, bytes]
) -> None:
    """Official defaults 0.35/0.85 drop the 0.5 character; ``character=0.4`` keeps it; MCut finds the gap."""
    fake_hub.add_commit(VIT_V2_REPO, wd14_files, refs=("v2.0",))
    spec = default_registry().resolve("wd14-vit-v2")
    assert (spec.thresholds.general, spec.thresholds.character) == (0.35, 0.85)
    overrides = [("wd14-vit-v2", {"character": "0.4"}), ("wd14-vit-v2-git", {"character": "0.1"})]
    pool = TaggerPool(default_registry(), thresholds=overrides)
    tagger = pool.get("wd14-vit-v2")
    (prediction,) = tagger.infer([tagger.prepare(POST, RED)])
    assert set(prediction.tags) == {"simple_background", "red_background", "hatsune_miku"}

    mcut = TaggerPool(default_registry(), thresholds=[(None, {"mcut": "true"})]).get("wd14-vit-v2")
    (prediction,) = mcut.infer([mcut.prepare(POST, RED)])
    # General: 0.95, 0.95 | 0.05, 0.0001 -> cut between 0.95 and 0.05. Character: one tag, MCut 0,
    # floored at 0.15 as in the official demo -> 0.5 is kept.
    assert set(prediction.tags) == {"simple_background", "red_background", "hatsune_miku"}


def test_default_providers_prefer_what_is_installed_without_tensorrt() -> None:
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert default_providers(available) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert default_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_explicit_providers_are_used(fake_hub: FakeHub, wd14_files: dict[str, bytes]) -> None:
    fake_hub.add_commit(VIT_V2_REPO, wd14_files, refs=("v2.0",))
    tagger = _load("wd14-vit-v2", providers=("CPUExecutionProvider",))
    assert _tags(tagger, RED) == {"simple_background", "red_background"}
