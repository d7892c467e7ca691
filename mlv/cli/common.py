"""Options and helpers shared by commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mlv.core.repo import Repo

F = TypeVar("F", bound=Callable[..., Any])


def wait_for_lock_option(f: F) -> F:
    return click.option(
        "--wait-for-lock",
        is_flag=True,
        help="Wait as long as it takes for another mlv writing in this repository.",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (documented shape).")(f)


def open_repo(wait_for_lock: bool = False) -> Repo:
    return Repo.open(lock_wait=None if wait_for_lock else 3.0)
