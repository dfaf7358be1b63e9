"""Errors of the LLM backends (one module, so that model resolution and the backends
share them without importing each other)."""

from __future__ import annotations


class BackendError(RuntimeError):
    """A chat request failed for good (after retries, or a non-retryable status)."""


class BackendUnavailableError(BackendError):
    """The backend cannot be built here: a package or the model is missing."""


__all__ = ["BackendError", "BackendUnavailableError"]
