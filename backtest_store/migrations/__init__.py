"""Index management. The runtime never touches indexes; operators and the embedded/test path do, through here."""

from .indexes import create_indexes

__all__ = ["create_indexes"]
