"""Base classes for a service's wire models: requests exact (nothing unknown is sent), answers tolerant (a field
the service adds later is ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class WireRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    def to_wire(self) -> dict[str, Any]:
        """The JSON body: aliases, and no key that was left unset (the service's defaults apply)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class WireResponse(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
