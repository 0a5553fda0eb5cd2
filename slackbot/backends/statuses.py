"""Each backend's status table, by the backend name stored with a job (the card and replies read it)."""

from __future__ import annotations

from slackbot.backends.openpipe.statuses import OPENPIPE_STATUSES
from slackbot.domain.lifecycle import StatusTable

# A backend not listed (a job of a backend no longer configured) shows its statuses as the service wrote them.
_NONE = StatusTable({})
STATUS_TABLES: dict[str, StatusTable] = {"openpipe": OPENPIPE_STATUSES}


def status_table(backend: str) -> StatusTable:
    return STATUS_TABLES.get(backend, _NONE)
