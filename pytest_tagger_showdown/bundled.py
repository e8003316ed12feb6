"""Where the bundled demo dataset and demo models are, for editable and regular installs alike.

They live in the repository's ``fixtures/`` folder, which setuptools installs as the package
``pytest_tagger_showdown.demo``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

DEMO_ROOT: Final = Path(str(files("pytest_tagger_showdown.demo")))
DEMO_DB: Final = DEMO_ROOT / "demo" / "data.db"
DEMO_MODELS: Final = DEMO_ROOT / "models"
