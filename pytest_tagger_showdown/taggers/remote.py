"""Taggers behind HTTP APIs, as the study ran them: the webui tagger extension and a hydrus-dd server.

``sdwebui:MODEL`` posts each image to stable-diffusion-webui's tagger extension
(``POST /tagger/v1/interrogate``); ``hydrus-dd`` posts it to a hydrus-dd ``run-server``
(``POST /`` with a multipart ``file``). The measured inference time is the HTTP round trip, server-side
decoding and model included, which is what the study's runtimes are. A server that is down, slow or
answers something unreadable fails that post with a :class:`TaggerRunError` saying which.
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import requests
from PIL import Image

from ..dataset.post import Post
from ..errors import ImageError, TaggerLoadError, TaggerRunError
from ..prediction import Prediction
from ..server_url import check_server_url
from ..tags import normalize_rating, normalize_tag
from .base import LoadOptions, TaggerBase
from .preprocess import decode_image, exif_orientation, upright
from .spec import TaggerSpec, Thresholds
from .wd14 import mcut_threshold

SDWEBUI: Final = "sdwebui"
HYDRUS_DD: Final = "hydrus-dd"
#: Seconds to wait for a TCP connection; the answer itself gets ``LoadOptions.http_timeout``.
CONNECT_TIMEOUT: Final = 10.0
#: The extension answers these four rating keys for WD models, always, and never thresholds them.
WEBUI_RATING_KEYS: Final = ("general", "sensitive", "questionable", "explicit")
#: The webui's API default cut-off (one for every tag: the API does not say which are characters).
WEBUI_THRESHOLDS: Final = Thresholds(general=0.35, character=0.35)
#: hydrus-dd's default ``--threshold``; informative only, the server applies its own.
HYDRUS_DD_THRESHOLDS: Final = Thresholds(general=0.5, character=0.5)
#: The image types hydrus-dd's server accepts (by file name); anything else is sent as PNG.
HYDRUS_DD_TYPES: Final = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "GIF": ("gif", "image/gif"),
}
#: Where each server's secret comes from instead of its URL (:func:`check_server_url` says so).
SECRET_FROM: Final = {
    SDWEBUI: "set SDWEBUI_AUTH=user:password for the webui's --api-auth",
    HYDRUS_DD: "hydrus-dd's server takes none",
}
#: The webui escapes brackets in tag names when asked to (``\\(`` -> ``(``).
_ESCAPED = re.compile(r"\\([()\[\]])")


def sdwebui_spec(model: str) -> TaggerSpec:
    """``sdwebui:MODEL``: a model the webui tagger extension serves (``wd14-vit-v2-git``, ...)."""
    return TaggerSpec(
        name=f"{SDWEBUI}:{model}",
        backend=SDWEBUI,
        thresholds=WEBUI_THRESHOLDS,
        options={"model": model},
        description=f"{model} through the webui tagger extension's HTTP API",
    )


HYDRUS_DD_SPEC: Final = TaggerSpec(
    name=HYDRUS_DD,
    backend=HYDRUS_DD,
    thresholds=HYDRUS_DD_THRESHOLDS,
    description="DeepDanbooru behind a hydrus-dd server (the server's own threshold applies)",
)


def configured_url(spec: TaggerSpec, options: LoadOptions | None = None) -> str | None:
    """The server a spec talks to: its own source, else the option, else the environment; checked by
    :func:`~pytest_tagger_showdown.server_url.check_server_url` (raises TaggerLoadError naming where
    a bad URL came from: a URL with a password in it is refused, never shown)."""
    options = options or LoadOptions()
    if spec.backend == SDWEBUI:
        option, env, value = "--sdwebui-url", "SDWEBUI_URL", options.sdwebui_url
    else:
        option, env, value = "--hydrus-dd-url", "HYDRUS_DD_URL", options.hydrus_dd_url
    found = [(f"tagger {spec.name}'s source", spec.source), (option, value), (env, os.environ.get(env))]
    for where, url in found:
        if url:
            try:
                return check_server_url(url, where, SECRET_FROM[spec.backend])
            except ValueError as exc:
                raise TaggerLoadError(str(exc)) from None
    return None


def _auth(options: LoadOptions) -> tuple[str, str] | None:
    text = options.sdwebui_auth or os.environ.get("SDWEBUI_AUTH")
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep:
        raise TaggerLoadError("SDWEBUI_AUTH must be user:password")
    return user, password


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat[:200] + ("..." if len(flat) > 200 else ""))


class HttpTagger(TaggerBase):
    """What both clients share: one keep-alive session, timeouts, and errors that name the server."""

    def __init__(self, spec: TaggerSpec, options: LoadOptions, option_name: str, env_name: str) -> None:
        self.spec = spec
        url = configured_url(spec, options)
        if url is None:
            raise TaggerLoadError(
                f"tagger {spec.name} needs a server: pass {option_name} URL or set {env_name}"
            )
        self.url = url
        self.timeout = (CONNECT_TIMEOUT, options.http_timeout)
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of ``method path``; any failure is a TaggerRunError naming the server."""
        url = f"{self.url}{path}"
        where = f"tagger {self.spec.name}: {method} {url}"
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise TaggerRunError(f"{where}: no answer within {self.timeout[1]:g} s ({exc})") from exc
        except requests.RequestException as exc:
            raise TaggerRunError(f"{where}: cannot reach the server: {exc}") from exc
        if response.status_code >= 400:
            raise TaggerRunError(f"{where}: HTTP {response.status_code}: {_excerpt(response.text)}")
        try:
            return response.json()
        except ValueError as exc:
            raise TaggerRunError(f"{where}: the answer is not JSON: {_excerpt(response.text)}") from exc


class SdWebuiClient(HttpTagger):
    """The webui's tagger API without a model chosen: enough to ask which models it serves."""

    def __init__(self, spec: TaggerSpec, options: LoadOptions) -> None:
        super().__init__(spec, options, "--sdwebui-url", "SDWEBUI_URL")
        self.session.auth = _auth(options)

    def served_models(self) -> list[str]:
        answer = self.request("GET", "/tagger/v1/interrogators")
        models = answer.get("models") if isinstance(answer, dict) else None
        if not isinstance(models, list) or not all(isinstance(model, str) for model in models):
            raise TaggerRunError(
                f"tagger {self.spec.name}: {self.url} lists no interrogators: {_excerpt(repr(answer))}"
            )
        return models


class SdWebuiTagger(SdWebuiClient):
    """The webui tagger extension: base64 image and threshold in, ``{"caption": {tag: confidence}}`` out."""

    def __init__(self, spec: TaggerSpec, options: LoadOptions) -> None:
        super().__init__(spec, options)
        self.model = spec.options.get("model", "")
        try:
            models = self.served_models()
        except TaggerRunError as exc:
            raise TaggerLoadError(str(exc)) from exc
        if self.model not in models:
            raise TaggerLoadError(
                f"tagger {spec.name}: {self.url} serves no model {self.model!r} "
                f"(it serves: {', '.join(models)})"
            )

    def prepare(self, post: Post, image: bytes) -> object:
        """The image as base64: its own bytes, or a PNG of it turned upright when its EXIF says so."""
        decoded = decode_image(image)
        if self.spec.preprocessing.exif_orientation and exif_orientation(decoded) != 1:
            image = _png(upright(decoded), "the webui")
        return base64.b64encode(image).decode("ascii")

    def infer(self, batch: Sequence[object]) -> list[Prediction]:
        thresholds = self.spec.thresholds
        # With MCut every confidence is needed; otherwise the server may cut (it keeps >= threshold).
        sent = 0.0 if thresholds.mcut else thresholds.general
        predictions = []
        for item in batch:
            answer = self.request(
                "POST",
                "/tagger/v1/interrogate",
                json={"image": item, "model": self.model, "threshold": sent},
            )
            caption = flat_caption(answer)
            if caption is None:
                raise TaggerRunError(
                    f'tagger {self.spec.name}: {self.url} answered neither {{"caption": {{tag: '
                    f'confidence}}}} (toriato) nor {{"caption": {{"tag": {{...}}, "rating": {{...}}}}}} '
                    f"(picobyte's fork): got {_excerpt(repr(answer))}"
                )
            predictions.append(caption_prediction(caption, thresholds))
        return predictions


def _confidences(value: object) -> dict[str, float] | None:
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(number, int | float) and not isinstance(number, bool)
        for key, number in value.items()
    ):
        return None
    return {key: float(number) for key, number in value.items()}


def flat_caption(answer: object) -> dict[str, float] | None:
    """The ``{tag: confidence}`` of an interrogate answer in either shape found in the wild (REFERENCE
    4): toriato's ``{"caption": {tag: confidence}}`` (rating keys among the tags) or picobyte's fork's
    ``{"caption": {"tag": {tag: confidence}, "rating": {rating: confidence}}}``; None for anything else.
    """
    caption = answer.get("caption") if isinstance(answer, dict) else None
    flat = _confidences(caption)
    if flat is not None:
        return flat
    if isinstance(caption, dict) and set(caption) == {"tag", "rating"}:
        tags, ratings = _confidences(caption["tag"]), _confidences(caption["rating"])
        if tags is not None and ratings is not None:
            # The fork names ratings as the rating keys (general, ...): caption_prediction reads them.
            return {**tags, **ratings}
    return None


def _png(image: Image.Image, receiver: str) -> bytes:
    buffer = io.BytesIO()
    try:
        image.save(buffer, "PNG")
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot re-encode a {image.mode} image as PNG for {receiver}: {exc}") from exc
    return buffer.getvalue()


def caption_prediction(caption: Mapping[str, float], thresholds: Thresholds) -> Prediction:
    """A webui caption as a prediction: the rating is the highest of the rating keys (WD models) or of
    the ``rating:*`` tags (DeepDanbooru models); every other tag above the general threshold is kept."""
    ratings: dict[str, float] = {}
    tags: dict[str, float] = {}
    for key, confidence in caption.items():
        if key in WEBUI_RATING_KEYS or key.startswith("rating:"):
            code = normalize_rating(key)
            if code is not None:
                ratings[code] = max(float(confidence), ratings.get(code, 0.0))
                continue
        tags[normalize_tag(_ESCAPED.sub(r"\1", key))] = float(confidence)
    cut = thresholds.general
    if thresholds.mcut:
        cut = mcut_threshold(np.asarray(list(tags.values()), dtype=np.float32))
    rating = max(ratings, key=ratings.__getitem__) if ratings else None
    kept = {tag: confidence for tag, confidence in tags.items() if confidence > cut}
    return Prediction(tags=kept, rating=rating, rating_confidences=ratings)


@dataclass(frozen=True)
class Upload:
    """One file as hydrus-dd's upload form takes it."""

    filename: str
    content_type: str
    data: bytes


class HydrusDDTagger(HttpTagger):
    """A hydrus-dd ``run-server``: multipart ``file`` in, a JSON list of tag names out (no confidences)."""

    def __init__(self, spec: TaggerSpec, options: LoadOptions) -> None:
        super().__init__(spec, options, "--hydrus-dd-url", "HYDRUS_DD_URL")

    def prepare(self, post: Post, image: bytes) -> object:
        """The bytes as they are when the server takes the type (it goes by file name), else PNG; a
        PNG turned upright too when the image's EXIF orientation says so (the server ignores it)."""
        decoded = decode_image(image)
        known = HYDRUS_DD_TYPES.get(decoded.format or "")
        turn = self.spec.preprocessing.exif_orientation and exif_orientation(decoded) != 1
        if known is not None and not turn:
            return Upload(f"{post.id}.{known[0]}", known[1], image)
        return Upload(f"{post.id}.png", "image/png", _png(upright(decoded) if turn else decoded, "hydrus-dd"))

    def infer(self, batch: Sequence[object]) -> list[Prediction]:
        predictions = []
        for item in batch:
            if not isinstance(item, Upload):
                raise TaggerRunError(
                    f"tagger {self.spec.name}: got {type(item).__name__}, not a prepared upload"
                )
            answer = self.request("POST", "/", files={"file": (item.filename, item.data, item.content_type)})
            if not isinstance(answer, list) or not all(isinstance(tag, str) for tag in answer):
                raise TaggerRunError(
                    f"tagger {self.spec.name}: {self.url} answered no list of tags: {_excerpt(repr(answer))}"
                )
            predictions.append(tag_list_prediction(answer))
        return predictions


def tag_list_prediction(names: Sequence[str]) -> Prediction:
    """hydrus-dd's answer as a prediction. It names tags without confidences (1.0 stands in) and may
    name several ratings above its threshold; the first it lists counts (its ``tags.txt`` order:
    safe, questionable, explicit), and no rating tag counts as an ordinary tag."""
    tags: dict[str, float] = {}
    rating: str | None = None
    for name in names:
        code = normalize_rating(name) if name.strip().lower().startswith("rating:") else None
        if code is not None:
            rating = rating or code
        else:
            tags[normalize_tag(name)] = 1.0
    return Prediction(tags=tags, rating=rating)


def load_sdwebui(spec: TaggerSpec, options: LoadOptions) -> SdWebuiTagger:
    return SdWebuiTagger(spec, options)


def load_hydrus_dd(spec: TaggerSpec, options: LoadOptions) -> HydrusDDTagger:
    return HydrusDDTagger(spec, options)


def unavailable(spec: TaggerSpec) -> str | None:
    """No server configured (the spec's source or ``SDWEBUI_URL`` / ``HYDRUS_DD_URL``); the server is
    not contacted: that is the run's business."""
    if configured_url(spec) is None:
        option, env = (
            ("--sdwebui-url", "SDWEBUI_URL")
            if spec.backend == SDWEBUI
            else ("--hydrus-dd-url", "HYDRUS_DD_URL")
        )
        return f"no server URL: pass {option} or set {env}"
    return None
