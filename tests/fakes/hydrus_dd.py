"""A fake hydrus-dd ``run-server`` on loopback.

``POST /`` with a multipart field ``file`` answers a JSON list of tag names above the server's
threshold, ratings among them as ``rating:safe`` etc., in ``tags.txt`` order; as the real server it
goes by the file name's extension (png, jpg, jpeg, gif) and answers anything else, or a request
without a file, with its HTML upload form. The tags depend on the uploaded image (its mean red and
blue). Switches: answer slowly, answer garbage, name several ratings.
"""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from werkzeug import Request, Response

from tests.fakes.loopback import LoopbackFake

ALLOWED_EXTENSIONS = {"png", "jpg", "jpeg", "gif"}
UPLOAD_FORM = """
    <!doctype html>
    <title>Upload new File</title>
    <h1>Upload new File</h1>
    <form method=post enctype=multipart/form-data>
      <p><input type=file name=file>
         <input type=submit value=Upload>
    </form>
    """


@dataclass
class Upload:
    """One file the fake tagged."""

    filename: str
    content_type: str
    image_format: str | None
    size: int


class FakeHydrusDD(LoopbackFake):
    """A hydrus-dd server in a thread on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to a well-behaved server with no history (tests share one running server)."""
        with self._lock:
            self.threshold = 0.5
            self.uploads: list[Upload] = []
            self.delay = 0.0
            self.garbage: str | None = None
            self.ambiguous_rating = False

    def _handle(self, request: Request) -> Response:
        if request.path != "/" or request.method != "POST":
            return Response(UPLOAD_FORM, content_type="text/html")
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return Response(status=302, headers={"Location": request.url})
        extension = upload.filename.rsplit(".", 1)[-1].lower() if "." in upload.filename else ""
        if extension not in ALLOWED_EXTENSIONS:
            return Response(UPLOAD_FORM, content_type="text/html")
        data = upload.read()
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError) as exc:
            # The real server lets the exception through: Flask answers 500 with an HTML page.
            return Response(
                f"<h1>Internal Server Error</h1><p>{exc}</p>", status=500, content_type="text/html"
            )
        with self._lock:
            self.uploads.append(Upload(upload.filename, upload.content_type or "", image.format, len(data)))
        if self.delay:
            time.sleep(self.delay)
        if self.garbage is not None:
            return Response(self.garbage, status=200, content_type="application/json")
        return Response(json.dumps(self._tags(image)), content_type="application/json")

    def _tags(self, image: Image.Image) -> list[str]:
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
        red, blue = float(rgb[..., 0].mean()), float(rgb[..., 2].mean())
        scores = {
            "simple_background": 0.8,
            "red_background": red - blue,
            "blue_background": blue - red,
            "1girl": 0.2,
            "rating:safe": 0.9,
            "rating:questionable": 0.6 if self.ambiguous_rating else 0.1,
            "rating:explicit": 0.01,
        }
        return [tag for tag, score in scores.items() if score >= self.threshold]
