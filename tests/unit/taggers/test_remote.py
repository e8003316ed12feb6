"""Taggers behind HTTP APIs against loopback fakes of the webui tagger extension and hydrus-dd."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator

import pytest
from PIL import ExifTags, Image

from pytest_tagger_showdown import (
    ImageError,
    LoadOptions,
    Post,
    TagCategory,
    TaggerLoadError,
    TaggerRunError,
)
from pytest_tagger_showdown.scoring import score_prediction
from pytest_tagger_showdown.taggers import default_registry, load_tagger, unavailable_reason
from pytest_tagger_showdown.taggers.remote import (
    HydrusDDTagger,
    SdWebuiTagger,
    Upload,
    caption_prediction,
    tag_list_prediction,
)
from pytest_tagger_showdown.taggers.spec import Thresholds
from tests.fakes.hydrus_dd import FakeHydrusDD
from tests.fakes.loopback import closed_port_url
from tests.fakes.sdwebui import FakeModel, FakeWebui
from tests.helpers.datasets import png_bytes

RED = png_bytes(colour=(200, 30, 30))
BLUE = png_bytes(colour=(30, 30, 200))
G = TagCategory.GENERAL


def _post(rating: str = "g") -> Post:
    tags = {"simple_background": G, "red_background": G}
    return Post(id=7, md5="0" * 32, rating=rating, file_ext="png", tags=tags)


@pytest.fixture(scope="module")
def running_webui() -> Iterator[FakeWebui]:
    with FakeWebui() as webui:
        yield webui


@pytest.fixture
def webui(running_webui: FakeWebui, monkeypatch: pytest.MonkeyPatch) -> FakeWebui:
    running_webui.reset()
    for name in ("SDWEBUI_URL", "SDWEBUI_AUTH"):
        monkeypatch.delenv(name, raising=False)
    return running_webui


@pytest.fixture(scope="module")
def running_hydrus() -> Iterator[FakeHydrusDD]:
    with FakeHydrusDD() as server:
        yield server


@pytest.fixture
def hydrus(running_hydrus: FakeHydrusDD, monkeypatch: pytest.MonkeyPatch) -> FakeHydrusDD:
    running_hydrus.reset()
    monkeypatch.delenv("HYDRUS_DD_URL", raising=False)
    return running_hydrus


def _webui_tagger(url: str, model: str = "wd14-vit-v2-git", **options: object) -> SdWebuiTagger:
    spec = default_registry().resolve(f"sdwebui:{model}")
    tagger = load_tagger(spec, LoadOptions(sdwebui_url=url, **options))  # type: ignore[arg-type]
    assert isinstance(tagger, SdWebuiTagger)
    return tagger


def _hydrus_tagger(url: str, **options: object) -> HydrusDDTagger:
    tagger = load_tagger(default_registry().resolve("hydrus-dd"), LoadOptions(hydrus_dd_url=url, **options))  # type: ignore[arg-type]
    assert isinstance(tagger, HydrusDDTagger)
    return tagger


# -- the webui tagger extension ---------------------------------------------------------------------


def test_webui_tags_an_image_over_http(webui: FakeWebui) -> None:
    tagger = _webui_tagger(webui.url)
    red, blue = tagger.infer([tagger.prepare(_post(), RED), tagger.prepare(_post(), BLUE)])
    assert red.rating == "g"
    assert red.rating_confidences == {"g": 0.7, "s": 0.2, "q": 0.06, "e": 0.01}
    # One threshold for all tags (the API does not say which are characters), strict as the demo.
    assert set(red.tags) == {"simple_background", "red_background", "hatsune_miku"}
    assert set(blue.tags) == {"simple_background", "blue_background", "hatsune_miku"}
    assert [(i.model, i.threshold, i.image_size) for i in webui.interrogations] == [
        ("wd14-vit-v2-git", 0.35, (64, 48))
    ] * 2


def test_webui_understands_picobytes_fork_answer(webui: FakeWebui) -> None:
    """The fork answers ``{"caption": {"tag": {...}, "rating": {...}}}``: the same prediction."""
    tagger = _webui_tagger(webui.url)
    (flat,) = tagger.infer([tagger.prepare(_post(), RED)])
    webui.shape = "picobyte"
    (split,) = tagger.infer([tagger.prepare(_post(), RED)])
    assert split.rating == "g"
    assert split.rating_confidences == {"g": 0.7, "s": 0.2, "q": 0.06, "e": 0.01}
    assert (
        dict(split.tags)
        == dict(flat.tags)
        == {
            "simple_background": 0.9,
            "red_background": 0.6667,
            "hatsune_miku": 0.5,
        }
    )


def test_webui_sends_an_image_upright_by_its_exif_orientation(webui: FakeWebui) -> None:
    """Orientation=6 on a 64x48 JPEG: the server receives the 48x64 picture people saw."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, "JPEG", exif=exif)
    tagger = _webui_tagger(webui.url)
    tagger.infer([tagger.prepare(_post(), buffer.getvalue()), tagger.prepare(_post(), RED)])
    assert [i.image_size for i in webui.interrogations] == [(48, 64), (64, 48)]


def test_webui_threshold_overrides_and_mcut_reach_the_server(webui: FakeWebui) -> None:
    spec = default_registry().resolve("sdwebui:wd14-vit-v2-git")
    options = LoadOptions(sdwebui_url=webui.url)
    tagger = SdWebuiTagger(dataclasses.replace(spec, thresholds=Thresholds(general=0.6)), options)
    (prediction,) = tagger.infer([tagger.prepare(_post(), RED)])
    assert set(prediction.tags) == {"simple_background", "red_background"}
    assert webui.interrogations[-1].threshold == 0.6

    mcut = SdWebuiTagger(dataclasses.replace(spec, thresholds=Thresholds(mcut=True)), options)
    (prediction,) = mcut.infer([mcut.prepare(_post(), RED)])
    assert webui.interrogations[-1].threshold == 0.0
    # Confidences 0.9, 0.67, 0.5, 0.3 and 0.0: the largest gap lies between 0.3 and 0.0.
    assert set(prediction.tags) == {"simple_background", "red_background", "hatsune_miku", "1girl"}


def test_webui_unknown_model_lists_the_served_ones(webui: FakeWebui) -> None:
    with pytest.raises(
        TaggerLoadError, match=r"serves no model 'wd14-moat-v2' \(it serves: wd14-vit-v2-git\)"
    ):
        _webui_tagger(webui.url, "wd14-moat-v2")


def test_webui_basic_auth_from_the_environment(webui: FakeWebui, monkeypatch: pytest.MonkeyPatch) -> None:
    webui.credentials = ("alice", "s3cret")
    with pytest.raises(TaggerLoadError, match="HTTP 401"):
        _webui_tagger(webui.url)
    monkeypatch.setenv("SDWEBUI_AUTH", "alice:s3cret")
    tagger = _webui_tagger(webui.url)
    assert tagger.infer([tagger.prepare(_post(), RED)])[0].rating == "g"
    monkeypatch.delenv("SDWEBUI_AUTH")
    assert _webui_tagger(webui.url, sdwebui_auth="alice:s3cret").model == "wd14-vit-v2-git"


def test_webui_url_from_option_or_environment(webui: FakeWebui, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = default_registry().resolve("sdwebui:wd14-vit-v2-git")
    assert unavailable_reason(spec) == "no server URL: pass --sdwebui-url or set SDWEBUI_URL"
    with pytest.raises(TaggerLoadError, match="needs a server: pass --sdwebui-url URL or set SDWEBUI_URL"):
        load_tagger(spec)
    monkeypatch.setenv("SDWEBUI_URL", webui.url + "/")
    assert unavailable_reason(spec) is None
    tagger = load_tagger(spec)
    assert isinstance(tagger, SdWebuiTagger)
    assert tagger.url == webui.url


def test_webui_down_at_load_or_mid_run(webui: FakeWebui) -> None:
    down = closed_port_url()
    with pytest.raises(
        TaggerLoadError, match=rf"GET {down}/tagger/v1/interrogators: cannot reach the server"
    ):
        _webui_tagger(down)
    with FakeWebui() as short_lived:
        tagger = _webui_tagger(short_lived.url)
        prepared = tagger.prepare(_post(), RED)
    with pytest.raises(
        TaggerRunError, match=r"POST http://127\.0\.0\.1:\d+/tagger/v1/interrogate: cannot reach"
    ):
        tagger.infer([prepared])


def test_webui_slow_answer_times_out(webui: FakeWebui) -> None:
    tagger = _webui_tagger(webui.url, http_timeout=0.2)
    webui.delay = 1.0
    with pytest.raises(TaggerRunError, match=r"no answer within 0\.2 s"):
        tagger.infer([tagger.prepare(_post(), RED)])


@pytest.mark.parametrize(
    ("garbage", "pattern"),
    [
        (
            "<html><body>502 Bad Gateway</body></html>",
            r"the answer is not JSON: '<html><body>502 Bad Gateway",
        ),
        (
            '{"caption": "simple background, red background"}',
            r"answered neither .*toriato.* nor .*picobyte's fork.*: got "
            r"\"\{'caption': 'simple background, red background'\}\"",
        ),
        ('{"caption": {"simple background": "high"}}', r"answered neither .*got .*'high'"),
        ('{"caption": {"tag": {"1girl": 0.9}, "rating": "g"}}', r"answered neither .*got .*'rating': 'g'"),
        ("[1, 2, 3]", r"answered neither .*got '\[1, 2, 3\]'"),
    ],
)
def test_webui_garbage_is_a_clear_error(webui: FakeWebui, garbage: str, pattern: str) -> None:
    tagger = _webui_tagger(webui.url)
    webui.garbage = garbage
    with pytest.raises(TaggerRunError, match=pattern):
        tagger.infer([tagger.prepare(_post(), RED)])


def test_webui_refuses_to_send_an_undecodable_image(webui: FakeWebui) -> None:
    tagger = _webui_tagger(webui.url)
    with pytest.raises(ImageError, match="cannot decode the image"):
        tagger.prepare(_post(), b"not an image")
    assert webui.interrogations == []


def test_webui_deepdanbooru_models_rate_through_rating_tags(webui: FakeWebui) -> None:
    """A DeepDanbooru model in the webui answers ``rating:*`` as tags, escaped brackets and spaces."""
    webui.models["deepdanbooru"] = FakeModel(
        ratings={},
        tags={"rating:safe": 0.8, "rating:questionable": 0.4, "hatsune miku \\(cosplay\\)": 0.6},
    )
    tagger = _webui_tagger(webui.url, "deepdanbooru")
    (prediction,) = tagger.infer([tagger.prepare(_post(), RED)])
    assert prediction.rating == "safe"
    assert set(prediction.tags) == {"hatsune_miku_(cosplay)", "red_background"}


def test_caption_without_any_rating_gives_no_rating() -> None:
    prediction = caption_prediction({"long hair": 0.9}, Thresholds())
    assert prediction.rating is None
    assert dict(prediction.tags) == {"long_hair": 0.9}


# -- hydrus-dd --------------------------------------------------------------------------------------


def test_hydrus_dd_tags_a_multipart_upload(hydrus: FakeHydrusDD) -> None:
    tagger = _hydrus_tagger(hydrus.url)
    red, blue = tagger.infer([tagger.prepare(_post(), RED), tagger.prepare(_post(), BLUE)])
    assert dict(red.tags) == {"simple_background": 1.0, "red_background": 1.0}
    assert set(blue.tags) == {"simple_background", "blue_background"}
    assert red.rating == "safe"
    assert [(u.filename, u.content_type, u.image_format) for u in hydrus.uploads] == [
        ("7.png", "image/png", "PNG")
    ] * 2


def test_hydrus_dd_safe_scores_correct_on_general_and_sensitive_posts(hydrus: FakeHydrusDD) -> None:
    tagger = _hydrus_tagger(hydrus.url)
    (prediction,) = tagger.infer([tagger.prepare(_post(), RED)])
    for rating, correct in (("g", True), ("s", True), ("q", False), ("e", False)):
        assert score_prediction(_post(rating), prediction).rating_correct is correct


def test_hydrus_dd_takes_the_first_of_several_ratings_and_no_rating_tag(hydrus: FakeHydrusDD) -> None:
    hydrus.ambiguous_rating = True
    tagger = _hydrus_tagger(hydrus.url)
    (prediction,) = tagger.infer([tagger.prepare(_post(), RED)])
    assert prediction.rating == "safe"
    assert not any(tag.startswith("rating") for tag in prediction.tags)
    assert tag_list_prediction(["rating:explicit", "rating:safe"]).rating == "e"


def test_hydrus_dd_gets_types_it_refuses_as_png(hydrus: FakeHydrusDD) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 30, 30)).save(buffer, "WEBP")
    tagger = _hydrus_tagger(hydrus.url)
    upload = tagger.prepare(_post(), buffer.getvalue())
    assert isinstance(upload, Upload)
    assert upload.filename == "7.png"
    jpeg = io.BytesIO()
    Image.new("RGB", (20, 10)).save(jpeg, "JPEG")
    assert tagger.prepare(_post(), jpeg.getvalue()) == Upload("7.jpg", "image/jpeg", jpeg.getvalue())
    (prediction,) = tagger.infer([upload])
    assert "red_background" in prediction.tags
    assert hydrus.uploads[-1].image_format == "PNG"


def test_hydrus_dd_gets_an_image_upright_by_its_exif_orientation(hydrus: FakeHydrusDD) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    jpeg = io.BytesIO()
    Image.new("RGB", (20, 10), (200, 30, 30)).save(jpeg, "JPEG", exif=exif)
    upload = _hydrus_tagger(hydrus.url).prepare(_post(), jpeg.getvalue())
    assert isinstance(upload, Upload)
    assert upload.filename == "7.png"
    assert Image.open(io.BytesIO(upload.data)).size == (10, 20)


def test_hydrus_dd_url_from_option_or_environment(
    hydrus: FakeHydrusDD, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = default_registry().resolve("hydrus-dd")
    assert unavailable_reason(spec) == "no server URL: pass --hydrus-dd-url or set HYDRUS_DD_URL"
    monkeypatch.setenv("HYDRUS_DD_URL", hydrus.url)
    assert unavailable_reason(spec) is None
    assert isinstance(load_tagger(spec), HydrusDDTagger)


@pytest.mark.parametrize(
    ("setup", "pattern"),
    [
        ("down", r"POST http://127\.0\.0\.1:\d+/: cannot reach the server"),
        ("slow", r"no answer within 0\.2 s"),
        ("html", r"the answer is not JSON: '<!doctype html>"),
        ("not-a-list", r"answered no list of tags: \"\{'tags': \['1girl'\]\}\""),
    ],
)
def test_hydrus_dd_failures_are_per_item_errors(hydrus: FakeHydrusDD, setup: str, pattern: str) -> None:
    url = closed_port_url() if setup == "down" else hydrus.url
    tagger = _hydrus_tagger(url, http_timeout=0.2)
    if setup == "slow":
        hydrus.delay = 1.0
    elif setup == "html":
        hydrus.garbage = "<!doctype html><title>Upload new File</title>"
    elif setup == "not-a-list":
        hydrus.garbage = '{"tags": ["1girl"]}'
    with pytest.raises(TaggerRunError, match=pattern):
        tagger.infer([tagger.prepare(_post(), RED)])
