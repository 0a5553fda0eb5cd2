"""OpenPipe's model statuses: what each means to the bot (its lifecycle) and the words shown for it.

Decisions:
- PROVISIONING is `running`: a trainer has been given to the job (it left the queue), even if training proper
  has not begun; cancelling it now stops a started job.
- PENDING_DEPRECATION is `succeeded`: the fine-tune worked and the model still answers; following a model's
  retirement schedule is not the bot's job, so it is terminal like DEPLOYED.
- DEPRECATED is `gone`: the model can no longer be called, as if deleted.
Any other string (OpenPipe's enum has grown before) is `unknown`: followed, shown as OpenPipe wrote it.
"""

from __future__ import annotations

from slackbot.domain.lifecycle import Lifecycle, StatusTable, StatusWords

OPENPIPE_STATUSES = StatusTable(
    {
        "PENDING": StatusWords(Lifecycle.QUEUED, "Accepted — waiting to be queued", "Accepted — waiting to be queued"),
        "QUEUED": StatusWords(Lifecycle.QUEUED, "Queued — waiting for a GPU", "Queued — waiting for a GPU"),
        "PROVISIONING": StatusWords(
            Lifecycle.RUNNING, "Provisioning — the trainer is starting", "Provisioning — the trainer is starting"
        ),
        "TRAINING": StatusWords(Lifecycle.RUNNING, "Training", "Training started"),
        "DEPLOYED": StatusWords(Lifecycle.SUCCEEDED, "Deployed", "Deployed — the model is ready to call"),
        "ERROR": StatusWords(Lifecycle.FAILED, "Failed", "Training failed"),
        "PENDING_DEPRECATION": StatusWords(
            Lifecycle.SUCCEEDED, "Scheduled for deprecation", "Scheduled for deprecation"
        ),
        "DEPRECATED": StatusWords(Lifecycle.GONE, "Deprecated", "Deprecated — the model can no longer be called"),
    }
)


def openpipe_lifecycle(status: str) -> Lifecycle:
    return OPENPIPE_STATUSES.lifecycle(status)
