"""Every backend's declaration: the one list a new backend joins, and the only module outside a backend's folder
that names one. A job's status table and form are found by the backend name stored with it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from slackbot.backends.declaration import BackendDeclaration, Capabilities
from slackbot.backends.form import FormDeclaration
from slackbot.backends.openpipe.declaration import OPENPIPE
from slackbot.backends.together.declaration import TOGETHER
from slackbot.domain.lifecycle import StatusTable

DECLARATIONS: Final[tuple[BackendDeclaration, ...]] = (OPENPIPE, TOGETHER)

_BY_NAME: dict[str, BackendDeclaration] = {d.name: d for d in DECLARATIONS}
# A backend not declared (a job of a backend removed since) shows its statuses as the service wrote them.
_NO_STATUSES = StatusTable({})


def declared() -> tuple[BackendDeclaration, ...]:
    """Every declared backend, in the registry's order (the first is the modal's default)."""
    return tuple(_BY_NAME.values())


def declaration(backend: str) -> BackendDeclaration | None:
    return _BY_NAME.get(backend)


def status_table(backend: str) -> StatusTable:
    found = _BY_NAME.get(backend)
    return found.statuses if found else _NO_STATUSES


def form_for(backend: str) -> FormDeclaration | None:
    found = _BY_NAME.get(backend)
    return found.form if found else None


def capabilities(backend: str) -> Capabilities:
    """A backend's capabilities; none for a backend no longer declared."""
    found = _BY_NAME.get(backend)
    return found.capabilities if found else Capabilities()


@contextmanager
def registered(*extra: BackendDeclaration) -> Iterator[None]:
    """These declarations join (or replace) the registry's for the duration (tests declare their own backends)."""
    before = dict(_BY_NAME)
    _BY_NAME.update({d.name: d for d in extra})
    try:
        yield
    finally:
        _BY_NAME.clear()
        _BY_NAME.update(before)
