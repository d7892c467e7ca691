"""Debug logging that costs nothing unless -v turned it on.

The CLI imports and configures `logging` only under -v; until then these calls return at
once, so hot paths and start-up never pay for the logging module.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable


def debug(name: str, message: str) -> None:
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(name).debug(message)


_secrets: set[str] = set()


def add_secrets(values: Iterable[str]) -> None:
    """Text never to print, not even in a debug log or a -v traceback: passwords and tokens
    of the remotes in use (and their %-decoded forms)."""
    from urllib.parse import unquote

    for value in values:
        if isinstance(value, str) and len(value) >= 3:
            _secrets.update({value, unquote(value)})


def forget_secrets() -> None:
    """Forget every secret given to add_secrets (the end of one command), and the notes
    said once."""
    _secrets.clear()
    _said.clear()


_said: set[str] = set()


def first_time(key: str) -> bool:
    """True the first time this command asks about key: for a note to say once per command
    (forget_secrets ends the command)."""
    if key in _said:
        return False
    _said.add(key)
    return True


def redact(text: str) -> str:
    """text with every secret given to add_secrets replaced by ***."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
