"""Debug logging that costs nothing unless -v turned it on.

The CLI imports and configures `logging` only under -v; until then these calls return at
once, so hot paths and start-up never pay for the logging module.
"""

from __future__ import annotations

import sys


def debug(name: str, message: str) -> None:
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(name).debug(message)
