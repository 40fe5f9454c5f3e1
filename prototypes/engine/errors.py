"""The engine's one error type (no Django: the services turn it into a DomainError)."""

from __future__ import annotations


class EngineError(Exception):
    """A problem the caller must fix (bad model name, weights that cannot be loaded...)."""
