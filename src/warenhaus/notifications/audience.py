"""Send-time checks: may this message still go to this recipient, now?

This is the extension point for the per-recipient audience rules and the link checks (mission,
promise 4): a message is written when its event happens, but whether it should still leave is
decided at the moment the worker is about to send it. A check is a function
``check(message) -> str | None`` registered for one or more message kinds; it runs after the
message has been rendered, so ``message.subject``, ``message.body_text`` and
``message.body_html`` are what would go out (the links in them can be checked). It returns
``None`` to let the message go, or a short reason to refuse it. A refused message becomes ``suppressed`` (final, never sent) and the refusal
is recorded as a delivery attempt, so it shows in the message's log.

    from warenhaus.notifications.audience import send_check

    @send_check("order_shipped")
    def still_the_buyer(message):
        ...
        return None if ok else "recipient is no longer the order's contact"

Checks run outside any transaction and must not write; they may read whatever they need. A
check that raises is treated as a transient failure (the message is retried), never as consent.
Kinds without a registered check are sent unconditionally for now; the audience-rule work is
expected to make a rule mandatory for every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import OutboxMessage

SendCheck = Callable[["OutboxMessage"], "str | None"]

_CHECKS: dict[str, list[SendCheck]] = {}


def send_check(*kinds: str) -> Callable[[SendCheck], SendCheck]:
    """Register ``func`` as a send-time check for messages of ``kinds``."""

    def register(func: SendCheck) -> SendCheck:
        for kind in kinds:
            if func not in _CHECKS.setdefault(kind, []):
                _CHECKS[kind].append(func)
        return func

    return register


def unregister(kind: str, func: SendCheck) -> None:
    if func in _CHECKS.get(kind, []):
        _CHECKS[kind].remove(func)


def checks_for(kind: str) -> list[SendCheck]:
    return list(_CHECKS.get(kind, []))


def refusal_for(message: OutboxMessage) -> str | None:
    """The first reason a registered check gives for not sending ``message``, or None."""
    for check in checks_for(message.kind):
        reason = check(message)
        if reason:
            return str(reason)[:2000]
    return None
