"""Repository-wide pytest setup: the plugin is tested through pytester runs of pytest itself."""

pytest_plugins = ["pytester"]
