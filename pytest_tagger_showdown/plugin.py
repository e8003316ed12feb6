"""pytest glue for the showdown (being written)."""
