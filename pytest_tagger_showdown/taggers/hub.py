"""WD14 taggers on the Hugging Face hub: SmilingWolf's repos under the names users know them by.

The names are the webui tagger extension's (``wd14-vit-v2``, ``wd14-vit-v2-git``, ...) plus the later
models. A model is downloaded once through ``huggingface_hub`` into its usual cache (so ``HF_HOME``,
``HF_HUB_CACHE``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_TOKEN`` work as everywhere else) and
then runs through the same code as a local folder (:mod:`.wd14`).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..errors import TaggerLoadError
from ..server_url import check_server_url
from . import wd14
from .base import LoadOptions
from .spec import TaggerSpec, Thresholds

BACKEND: Final = "wd14-hub"
#: The two files of SmilingWolf's layout; the tag list is fetched first and pins the commit.
TAGS_FILE: Final = "selected_tags.csv"
MODEL_FILE: Final = "model.onnx"
#: The official demo's cut-offs (general 0.35, character 0.85).
DEMO_THRESHOLDS: Final = Thresholds(general=0.35, character=0.85)

_ORG = "SmilingWolf"


@dataclass(frozen=True)
class HubModel:
    name: str
    repo: str
    revision: str
    note: str


def _v2(name: str, arch: str) -> tuple[HubModel, HubModel]:
    """A v2 model under the extension's two names: the ``v2.0`` tag and the ``main`` branch (``-git``)."""
    repo = f"{_ORG}/wd-v1-4-{arch}-tagger-v2"
    return (
        HubModel(name, repo, "v2.0", f"WD14 {arch} v2 (tag v2.0)"),
        HubModel(f"{name}-git", repo, "main", f"WD14 {arch} v2 (main branch)"),
    )


#: Every hub model, with the revision the webui extension (or its maintained forks) pins.
WD14_MODELS: Final[tuple[HubModel, ...]] = (
    *_v2("wd14-vit-v2", "vit"),
    *_v2("wd14-convnext-v2", "convnext"),
    *_v2("wd14-convnextv2-v2", "convnextv2"),
    *_v2("wd14-swinv2-v2", "swinv2"),
    HubModel("wd14-vit", f"{_ORG}/wd-v1-4-vit-tagger", "main", "WD14 vit v1"),
    HubModel("wd14-convnext", f"{_ORG}/wd-v1-4-convnext-tagger", "main", "WD14 convnext v1"),
    HubModel("wd14-moat-v2", f"{_ORG}/wd-v1-4-moat-tagger-v2", "v2.0", "WD14 moat v2 (tag v2.0)"),
    HubModel("wd-vit-v3", f"{_ORG}/wd-vit-tagger-v3", "main", "WD vit v3"),
    HubModel("wd-swinv2-v3", f"{_ORG}/wd-swinv2-tagger-v3", "main", "WD swinv2 v3"),
    HubModel("wd-convnext-v3", f"{_ORG}/wd-convnext-tagger-v3", "main", "WD convnext v3"),
    HubModel("wd-vit-large-v3", f"{_ORG}/wd-vit-large-tagger-v3", "main", "WD vit-large v3"),
    HubModel("wd-eva02-large-v3", f"{_ORG}/wd-eva02-large-tagger-v3", "main", "WD eva02-large v3"),
)


def hub_specs() -> list[TaggerSpec]:
    """The registry entries for :data:`WD14_MODELS`."""
    return [
        TaggerSpec(
            name=model.name,
            backend=BACKEND,
            source=model.repo,
            revision=model.revision,
            thresholds=DEMO_THRESHOLDS,
            description=f"{model.note}, from the Hugging Face hub",
        )
        for model in WD14_MODELS
    ]


@dataclass(frozen=True)
class HubSettings:
    """Where the hub and its cache are, read from the environment when a model is needed.

    ``huggingface_hub`` reads these variables once, at import; reading them again here makes a change
    made after that (a test, a ``conftest.py``) take effect too.
    """

    endpoint: str | None
    cache_dir: str
    offline: bool

    @classmethod
    def from_environment(cls) -> HubSettings:
        """Raises TaggerLoadError for an ``HF_ENDPOINT`` that is not an http(s) URL or holds a password
        (huggingface_hub prints the endpoint in its retry warnings, beyond our reach)."""
        from huggingface_hub import constants

        env = os.environ
        if env.get("HF_HUB_CACHE"):
            cache_dir = env["HF_HUB_CACHE"]
        elif env.get("HF_HOME"):
            cache_dir = os.path.join(env["HF_HOME"], "hub")
        else:
            cache_dir = constants.HF_HUB_CACHE
        offline_text = env.get("HF_HUB_OFFLINE")
        offline = (
            offline_text.strip().upper() in ("1", "ON", "YES", "TRUE")
            if offline_text is not None
            else bool(constants.HF_HUB_OFFLINE)
        )
        endpoint = env.get("HF_ENDPOINT", "").strip() or None
        if endpoint is not None:
            try:
                endpoint = check_server_url(endpoint, "HF_ENDPOINT", "set HF_TOKEN for the hub's token")
            except ValueError as exc:
                raise TaggerLoadError(str(exc)) from None
        return cls(endpoint=endpoint, cache_dir=os.path.expanduser(cache_dir), offline=offline)


def _label(spec: TaggerSpec) -> str:
    return f"{spec.source}@{spec.revision or 'main'}"


def cached_folder(spec: TaggerSpec, settings: HubSettings | None = None) -> Path | None:
    """The cached snapshot folder holding both files of ``spec``'s revision, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    settings = settings or HubSettings.from_environment()
    folders = set()
    for filename in (TAGS_FILE, MODEL_FILE):
        found = try_to_load_from_cache(
            spec.source, filename, cache_dir=settings.cache_dir, revision=spec.revision
        )
        if not isinstance(found, str):
            return None
        folders.add(Path(found).parent)
    return folders.pop() if len(folders) == 1 else None


def download(spec: TaggerSpec, settings: HubSettings | None = None) -> Path:
    """Fetch (or find in the cache) both files of ``spec`` and return their snapshot folder.

    The tag list is resolved first; the model is then fetched at that very commit, so a branch that
    moves between the two requests cannot pair a model with another commit's tag list.
    """
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:
        raise TaggerLoadError(
            f"tagger {spec.name} downloads from the Hugging Face hub: "
            "pip install 'pytest-tagger-showdown[onnx]'"
        ) from exc
    settings = settings or HubSettings.from_environment()
    where = f"tagger {spec.name}: {_label(spec)}"

    def fetch(filename: str, revision: str | None) -> Path:
        return Path(
            hf_hub_download(
                spec.source,
                filename,
                revision=revision,
                cache_dir=settings.cache_dir,
                endpoint=settings.endpoint,
                local_files_only=settings.offline,
            )
        )

    try:
        tags = fetch(TAGS_FILE, spec.revision)
        model = fetch(MODEL_FILE, tags.parent.name)
    except LocalEntryNotFoundError as exc:
        reason = "HF_HUB_OFFLINE is set" if settings.offline else f"the hub cannot be reached ({exc})"
        raise TaggerLoadError(
            f"{where} is not in the Hugging Face cache ({settings.cache_dir}) and {reason}; "
            "download it once with network access, or point --tagger onnx:PATH at a local copy"
        ) from exc
    except RevisionNotFoundError as exc:
        raise TaggerLoadError(f"{where}: the hub has no revision {spec.revision!r}") from exc
    except RepositoryNotFoundError as exc:
        raise TaggerLoadError(
            f"{where}: the hub has no such repository, or it needs a token (set HF_TOKEN)"
        ) from exc
    except EntryNotFoundError as exc:
        raise TaggerLoadError(
            f"{where} lacks {MODEL_FILE} or {TAGS_FILE}: not a WD14-layout repository"
        ) from exc
    except HfHubHTTPError as exc:
        raise TaggerLoadError(f"{where}: the hub answered an error: {exc}") from exc
    except Exception as exc:  # network errors of huggingface_hub's HTTP client share no base class
        raise TaggerLoadError(f"{where}: download failed: {type(exc).__name__}: {exc}") from exc
    return model.parent


def load(spec: TaggerSpec, options: LoadOptions) -> wd14.WD14Tagger:
    """Download if needed, then load the snapshot folder like ``onnx:PATH``."""
    return wd14.WD14Tagger(spec, download(spec), options)


def unavailable(spec: TaggerSpec) -> str | None:
    """Why ``spec`` cannot run without a download first (not cached), or None if it is ready."""
    for module in ("onnxruntime", "huggingface_hub"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'pytest-tagger-showdown[onnx]')"
    if cached_folder(spec) is None:
        return f"{_label(spec)} is not downloaded yet (pytest --tagger {spec.name} fetches it)"
    return None
