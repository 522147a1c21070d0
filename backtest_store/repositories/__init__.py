from .repository import BulkCounts, Repository

__all__ = ["BulkCounts", "Repository"]
