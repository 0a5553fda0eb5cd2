"""Slack delivery: the notifier that drains the outbox into Slack, its per-channel pacing and the posting calls.

It sits above the store (it reads jobs' outbox and store) and beside the block builders; jobs/ never imports it.
"""
