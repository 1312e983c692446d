"""Repositories: the only code that speaks SQL. Each takes the async engine and a tenant."""

from storage.repositories.artifacts import ArtifactRepository
from storage.repositories.interaction_types import InteractionTypeRepository
from storage.repositories.interactions import InteractionRepository
from storage.repositories.items import ItemRepository
from storage.repositories.users import UserRepository
from storage.repositories.vectors import VectorRepository

__all__ = [
    "ArtifactRepository",
    "InteractionRepository",
    "InteractionTypeRepository",
    "ItemRepository",
    "UserRepository",
    "VectorRepository",
]
