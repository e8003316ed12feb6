"""Repository-wide pytest setup: the plugin is tested through pytester runs of pytest itself."""

import os

# huggingface_hub asks its real endpoint for telemetry and agent metadata; no test may reach it.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

pytest_plugins = ["pytester"]
