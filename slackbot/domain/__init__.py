"""The backend-neutral core: a job's lifecycle and the events the bot tells about it. Imports nothing of ours."""
