"""Uploading a chart into a job's thread (slack_sdk's `files_upload_v2`: files.getUploadURLExternal, the upload
URL, files.completeUploadExternal with `channel_id` + `thread_ts`), and finding one an earlier attempt made.

File shares carry no message metadata, so an upload is named after its outbox row (`filename`): a row claimed
again after an attempt that may have reached Slack looks for that name among the thread's newer messages first.

Uploads share one workspace-wide budget (`UPLOAD_LANE`'s slot in `channel_slots`, taken by every replica): Slack
rates the files.* methods per workspace, and a chart is worth less than a reply, so charts go at a pace that
leaves room for everything else, and a 429 pauses every replica's uploads for its Retry-After.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk import WebClient

from slackbot.delivery.charts import Chart
from slackbot.delivery.slack_post import call, messages_since

# Slack's files.* methods are Tier 4 today (100+ per minute per workspace), the old files.upload was Tier 2 (20+):
# one upload (two calls) every 4 s keeps well inside either.
UPLOAD_INTERVAL_SECONDS = 4.0


def filename(job_id: int, outbox_id: int) -> str:
    return f"loss-curve-job{job_id}-{outbox_id}.png"


def upload_chart(client: WebClient, channel: str, thread_ts: str | None, chart: Chart, name: str) -> str:
    """Upload the chart as a reply in the thread; the file's id. Raises what `slack_post.call` raises."""
    kwargs: dict[str, Any] = {
        "channel": channel,
        "file": chart.png,
        "filename": name,
        "title": chart.title,
        "alt_txt": chart.alt_text,
    }
    if thread_ts is not None:
        kwargs["thread_ts"] = thread_ts
    response = call(client, "files_upload_v2", channel, **kwargs)
    return str(response["file"]["id"])


def find_uploaded(
    client: WebClient, channel: str, thread_ts: str | None, name: str, since: datetime, pages: int
) -> str | None:
    """The id of a file called `name` shared in the thread (or channel) after `since`; None if there is none."""
    for message in messages_since(client, channel, thread_ts, since, pages):
        for shared in message.get("files") or []:
            if shared.get("name") == name:
                return str(shared["id"])
    return None
