"""`HttpBackend`: what every backend over a `JsonApiClient` shares (its constructor, project, repr and close), so
that a backend's folder holds only what is its own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

import httpx
from pydantic import SecretStr

from slackbot.backends.http import MAX_BODY_BYTES, JsonApiClient, account_id

C = TypeVar("C", bound=JsonApiClient)


class HttpBackend(Generic[C]):
    """Builds its service's client from the settings and names the project the key opens. A subclass names
    itself (`name`, stored with each job and the start of its project id) and its client (`client_class`)."""

    name: str
    client_class: type[C]

    def __init__(
        self,
        api_key: SecretStr,
        base_url: str,
        *,
        timeout: float = 20.0,
        client: httpx.Client | None = None,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        base_delay: float = 0.5,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._project = account_id(self.name, api_key, base_url)
        self.client: C = self.client_class(
            api_key,
            base_url,
            timeout=timeout,
            client=client,
            max_attempts=max_attempts,
            sleep=sleep,
            base_delay=base_delay,
            max_body_bytes=max_body_bytes,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(project={self._project!r})"

    @property
    def project(self) -> str:
        return self._project

    def close(self) -> None:
        self.client.close()
