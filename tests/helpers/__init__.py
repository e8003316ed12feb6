"""What several test modules share: datasets and models made in code, the brightness scenario, and
pytest runs of the plugin. Fake services live in tests/fakes/."""
