"""Errors the command line turns into one clear line and exit status 2."""
from __future__ import annotations


class BadInput(ValueError):
    """Bad user input: a malformed file, an unknown name, a value out of range.

    The message names the file (when there is one), the key and what is allowed,
    so the CLI can print it as a single line without a traceback.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        parts = []
        if source:
            parts.append(str(source))
        if key:
            parts.append(f"key '{key}'")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


def check_choice(value: object, allowed, *, source: str | None = None, key: str | None = None) -> None:
    """Raise BadInput naming the allowed options when value is not one of them."""
    allowed = list(allowed)
    if value not in allowed:
        options = ", ".join(repr(option) for option in allowed)
        raise BadInput(f"got {value!r}, allowed: {options}", source=source, key=key)
