"""Together AI's fine-tuning API: wire models, client and status table (not wired into the bot yet)."""
