"""Datasets of Danbooru posts: the SQLite schema, reading and writing it, and the bundled demo."""

from .post import Post
from .store import Dataset

__all__ = ["Dataset", "Post"]
