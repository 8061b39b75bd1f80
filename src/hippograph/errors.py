"""Errors a user can act on. The CLI prints their message and exits non-zero, with no traceback."""


class HippographError(Exception):
    """Base class: the message says what went wrong and what to do about it."""


class InputError(HippographError):
    """Bad input: a missing path, an empty or binary file, a malformed JSONL line, duplicate ids."""


class StoreError(HippographError):
    """The store is missing, empty, locked for too long, or written by a newer version."""


class ModelNotFoundError(HippographError):
    """A configured model is not installed."""
