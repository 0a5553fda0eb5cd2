"""Every backend's form declaration, by backend name: the one list a new backend joins."""

from __future__ import annotations

from typing import Final

from slackbot.backends.form import FormDeclaration
from slackbot.backends.openpipe.fields import OPENPIPE_FORM

FORMS: Final[dict[str, FormDeclaration]] = {form.backend: form for form in (OPENPIPE_FORM,)}


def form_for(backend: str) -> FormDeclaration | None:
    return FORMS.get(backend)
