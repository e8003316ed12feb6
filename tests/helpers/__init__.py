"""What several test modules share: datasets, models and per-post results made in code, the brightness
scenario, and pytest runs of the plugin. Fake services live in tests/fakes/."""
