"""Repository-wide pytest setup: the tests drive the plugin through pytester."""
