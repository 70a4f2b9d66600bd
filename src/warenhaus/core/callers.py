"""Who is calling and what they may do: the port through which core asks the accounts app.

core knows no domain; accounts provides both answers in its ``AppConfig.ready()``
(:func:`provide`), and core's request helpers ask through :func:`user_for_token` and :func:`can`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class _Provider:
    user_for_token: Callable[[str], object | None]
    can: Callable[[object, str], bool]


_provider: _Provider | None = None


def provide(*, user_for_token: Callable[[str], object | None], can: Callable[[object, str], bool]):
    """Install the app that knows users (called once, by accounts)."""
    global _provider
    _provider = _Provider(user_for_token=user_for_token, can=can)


def _installed() -> _Provider:
    if _provider is None:
        raise RuntimeError("no app provides callers (is warenhaus.accounts installed?)")
    return _provider


def user_for_token(raw: str):
    """The user a bearer token belongs to, or None when it is unknown or expired."""
    return _installed().user_for_token(raw)


def can(user, capability: str) -> bool:
    """Whether ``user``'s roles allow ``capability``."""
    return _installed().can(user, capability)
