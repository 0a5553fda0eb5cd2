"""slackbot: start and follow OpenPipe fine-tuning jobs from Slack."""

__version__ = "0.1.0"
