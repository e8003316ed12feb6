"""A fake stable-diffusion-webui with the tagger extension's API, on loopback.

``GET /tagger/v1/interrogators`` lists the models; ``POST /tagger/v1/interrogate`` takes
``{"image": base64, "model": name, "threshold": t}`` and answers ``{"caption": {tag: confidence}}``
the way toriato's extension does (or, with ``shape = "picobyte"``, ``{"caption": {"tag": {tag:
confidence}, "rating": {rating: confidence}}}`` as picobyte's fork does): the four rating keys
always, other tags only at or above the threshold,
404 ``{"detail": "Model not found"}`` for an unknown model, HTTP Basic auth (401 with
``WWW-Authenticate``) when credentials are set. The image is really decoded, and a model's answer
depends on it (its mean red and blue), so a test can tell images apart.
Switches: answer slowly, answer garbage, answer a caption that is not ``{tag: number}``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from werkzeug import Request, Response

from tests.fakes.loopback import LoopbackFake

RATING_KEYS = ("general", "sensitive", "questionable", "explicit")


@dataclass
class Interrogation:
    """One ``interrogate`` call the fake answered."""

    model: str
    threshold: float
    image_size: tuple[int, int]


@dataclass
class FakeModel:
    """Fixed confidences, plus ``red_background`` / ``blue_background`` from the image's colour."""

    ratings: Mapping[str, float] = field(
        default_factory=lambda: {"general": 0.7, "sensitive": 0.2, "questionable": 0.06, "explicit": 0.01}
    )
    tags: Mapping[str, float] = field(
        default_factory=lambda: {"simple background": 0.9, "1girl": 0.3, "hatsune miku": 0.5}
    )

    def answer(self, image: Image.Image, threshold: float, shape: str = "toriato") -> dict[str, Any]:
        """The caption: flat (toriato's extension) or split into tags and ratings (picobyte's fork)."""
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
        red, blue = float(rgb[..., 0].mean()), float(rgb[..., 2].mean())
        tags = {**self.tags, "red background": max(0.0, red - blue), "blue background": max(0.0, blue - red)}
        kept = {tag: round(value, 4) for tag, value in tags.items() if value >= threshold}
        ordered = dict(sorted(kept.items(), key=lambda item: -item[1]))
        if shape == "picobyte":
            return {"tag": ordered, "rating": dict(self.ratings)}
        return {**self.ratings, **ordered}


class FakeWebui(LoopbackFake):
    """The webui's tagger API in a thread on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to a well-behaved server with no history (tests share one running server)."""
        with self._lock:
            self.models: dict[str, FakeModel] = {"wd14-vit-v2-git": FakeModel()}
            self.credentials: tuple[str, str] | None = None
            self.interrogations: list[Interrogation] = []
            self.delay = 0.0
            self.garbage: str | None = None
            #: ``toriato`` (the extension) or ``picobyte`` (the fork's split caption).
            self.shape = "toriato"

    def _handle(self, request: Request) -> Response:
        if self.credentials is not None:
            auth = request.authorization
            if auth is None or (auth.username, auth.password) != self.credentials:
                return _json({"detail": "Incorrect username or password"}, 401, {"WWW-Authenticate": "Basic"})
        if request.path == "/tagger/v1/interrogators" and request.method == "GET":
            return _json({"models": list(self.models)})
        if request.path == "/tagger/v1/interrogate" and request.method == "POST":
            return self._interrogate(request)
        return _json({"detail": "Not Found"}, 404)

    def _interrogate(self, request: Request) -> Response:
        try:
            body: dict[str, Any] = json.loads(request.get_data())
            image = Image.open(io.BytesIO(base64.b64decode(body["image"], validate=True)))
            image.load()
            threshold = float(body.get("threshold", 0.35))
        except (ValueError, KeyError, TypeError, binascii.Error, UnidentifiedImageError, OSError) as exc:
            return _json({"detail": f"bad request: {exc}"}, 422)
        model = self.models.get(str(body.get("model")))
        if model is None:
            return _json({"detail": "Model not found"}, 404)
        with self._lock:
            self.interrogations.append(Interrogation(str(body["model"]), threshold, image.size))
        if self.delay:
            time.sleep(self.delay)
        if self.garbage is not None:
            return Response(self.garbage, status=200, content_type="application/json")
        return _json({"caption": model.answer(image, threshold, self.shape)})


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")
