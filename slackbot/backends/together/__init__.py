"""Together AI's fine-tuning API: wire models, client, status table, form, the backend and its declaration
(`declaration.TOGETHER`). Nothing is imported here, so that reading the declaration brings no HTTP client."""
