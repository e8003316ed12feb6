"""Presenting showdown results: the terminal table (and, later, plots and the HTML report)."""
