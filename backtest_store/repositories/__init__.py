from .repository import Repository

__all__ = ["Repository"]
