"""The price confirmation, pushed over the form on submit for a backend that estimates prices.

Pure builders of modal views (`ids.VIEW_PRICE_CONFIRM`): "Estimating the price…" at once (pushed in the ack), then
the estimate, a refusal, or a failed estimate (filled in with `views.update` by `external_id`, since the app never
learns the id of a view it pushed in an ack). The form travels in the view's `private_metadata` (`carry`), so the
confirmation's submission starts exactly what the form held.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from slackbot import ids
from slackbot.backends.base import PriceQuote
from slackbot.forms import PRIVATE_METADATA_LIMIT, FormState, MetadataError, ModalMetadata
from slackbot.text import clip, code, mrkdwn

TITLE: Final = "Confirm the price"
START: Final = "Start training"
START_ANYWAY: Final = "Start anyway"
BACK: Final = "Back"
_ZIPPED: Final = "z:"
_MAX_STATE_TEXT: Final = 3000
_MAX_INFLATED: Final = 256 * 1024


def carry(metadata: ModalMetadata, state: FormState) -> str | None:
    """The form's metadata and typed state as `private_metadata` (compressed when long); None if even that is
    over Slack's 3000 characters (then the form says so)."""
    text = json.dumps({"meta": metadata.model_dump(mode="json", exclude_none=True), "state": state}, sort_keys=True)
    if len(text) <= PRIVATE_METADATA_LIMIT:
        return text
    zipped = _ZIPPED + base64.b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")
    return zipped if len(zipped) <= PRIVATE_METADATA_LIMIT else None


def read_carried(text: object) -> tuple[ModalMetadata, FormState]:
    """What `carry` wrote; `MetadataError` for anything else (never guesses, never echoes the value)."""
    if not isinstance(text, str) or not text or len(text) > PRIVATE_METADATA_LIMIT:
        raise MetadataError("The confirmation's private_metadata is missing or too long.")
    try:
        raw: str | bytes = text
        if text.startswith(_ZIPPED):
            # Bounded: a crafted payload cannot inflate into more than a form could hold.
            inflater = zlib.decompressobj()
            raw = inflater.decompress(base64.b64decode(text[len(_ZIPPED) :]), _MAX_INFLATED)
            if inflater.unconsumed_tail:
                raise ValueError("too large")
        data = json.loads(raw)
    except (ValueError, zlib.error):
        raise MetadataError("The confirmation's private_metadata is not ours.") from None
    if not isinstance(data, dict) or not isinstance(data.get("state"), dict):
        raise MetadataError("The confirmation's private_metadata holds no form.")
    metadata = ModalMetadata.decode(json.dumps(data.get("meta")))
    state: FormState = {}
    for key, value in data["state"].items():
        if not isinstance(key, str) or not isinstance(value, str | bool) or len(str(value)) > _MAX_STATE_TEXT:
            raise MetadataError("The confirmation's private_metadata holds a value no form has.")
        state[key] = value
    return metadata, state


def _view(blocks: Iterable[Block], carried: str, external_id: str | None, submit: str | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": ids.VIEW_PRICE_CONFIRM,
        "title": {"type": "plain_text", "text": TITLE},
        "close": {"type": "plain_text", "text": BACK},
        "private_metadata": carried,
        "blocks": [block.to_dict() for block in blocks],
    }
    if external_id is not None:
        view["external_id"] = external_id
    if submit is not None:
        view["submit"] = {"type": "plain_text", "text": submit}
    return view


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, 3000)))


def _about(service: str, slug: str) -> SectionBlock:
    return _section(f"Fine-tune {code(slug, 100)} on {mrkdwn(service, 60, one_line=True)}")


def estimating_view(external_id: str, carried: str, service: str, slug: str) -> dict[str, Any]:
    """Pushed in the ack: nothing to confirm yet (no Start button)."""
    blocks = [_about(service, slug), _section(":hourglass_flowing_sand: Estimating the price…")]
    return _view(blocks, carried, external_id, None)


def quote_view(external_id: str, carried: str, service: str, slug: str, quote: PriceQuote) -> dict[str, Any]:
    """The service's estimate: Start, or (when it will not start it) why, and no Start."""
    who = mrkdwn(service, 60, one_line=True)
    if not quote.available:
        text = f":warning: {who} could not estimate the price of this fine-tune. You can start it anyway, or go back."
        return _view([_about(service, slug), _section(text)], carried, external_id, START_ANYWAY)
    lines = []
    if quote.total_usd is not None:
        lines.append(f"*Estimated price:* ${quote.total_usd:,.2f}")
    if quote.tokens is not None:
        lines.append(f"*Tokens:* {quote.tokens:,}")
    if quote.epochs is not None:
        lines.append(f"*Epochs:* {quote.epochs:g}")
    if quote.limit_usd is not None:
        lines.append(f"*Your account's limit:* ${quote.limit_usd:,.2f}")
    blocks: list[Block] = [_about(service, slug), _section("\n".join(lines) or "The service gave no figures.")]
    if not quote.allowed:
        reason = mrkdwn(quote.reason or "it gave no reason", 1000)
        blocks.append(_section(f":no_entry: {who} will not start this fine-tune: {reason}"))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Go back to change it.")]))
        return _view(blocks, carried, external_id, None)
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text="An estimate: the service bills what it runs.")]))
    return _view(blocks, carried, external_id, START)


def estimate_failed_view(external_id: str, carried: str, service: str, slug: str, reason: str) -> dict[str, Any]:
    """The estimate failed or took too long: say so, and let the user start anyway or go back."""
    who = mrkdwn(service, 60, one_line=True)
    text = f":warning: {who} did not give a price estimate: {mrkdwn(reason, 500)}\nYou can start anyway, or go back."
    return _view([_about(service, slug), _section(text)], carried, external_id, START_ANYWAY)


def not_started_view(carried: str, errors: Mapping[str, str]) -> dict[str, Any]:
    """The confirmation was submitted but the form no longer passes (e.g. the slug was taken meanwhile)."""
    lines = [f"• {mrkdwn(message, 500)}" for message in errors.values()]
    text = ":no_entry: The fine-tune was not started:\n" + "\n".join(lines) + "\nGo back to change the form."
    return _view([_section(text)], carried, None, None)
