"""Together's fine-tuning job statuses: what each means to the bot (its lifecycle) and the words shown for it.

Decisions:
- compressing and uploading are `running`: training is over but the model is not callable yet; cancelling
  now still stops the job.
- cancel_requested is `cancelling`: the job keeps running (and billing) until Together says cancelled.
Any other string (Together's enums grow) is `unknown`: followed, shown as Together wrote it.
"""

from __future__ import annotations

from slackbot.domain.lifecycle import Lifecycle, StatusTable, StatusWords

TOGETHER_STATUSES = StatusTable(
    {
        "pending": StatusWords(Lifecycle.QUEUED, "Pending — accepted", "Accepted — waiting to be queued"),
        "queued": StatusWords(Lifecycle.QUEUED, "Queued — waiting for a GPU", "Queued — waiting for a GPU"),
        "running": StatusWords(Lifecycle.RUNNING, "Training", "Training started"),
        "compressing": StatusWords(Lifecycle.RUNNING, "Compressing the model", "Training done — compressing the model"),
        "uploading": StatusWords(Lifecycle.RUNNING, "Uploading the model", "Uploading the model"),
        "cancel_requested": StatusWords(Lifecycle.CANCELLING, "Cancelling", "Cancel requested — stopping the job"),
        "completed": StatusWords(Lifecycle.SUCCEEDED, "Completed", "Completed — the model is ready to call"),
        "error": StatusWords(Lifecycle.FAILED, "Failed", "Training failed"),
        "cancelled": StatusWords(Lifecycle.CANCELLED, "Cancelled", "Cancelled"),
    }
)


def together_lifecycle(status: str) -> Lifecycle:
    return TOGETHER_STATUSES.lifecycle(status)
