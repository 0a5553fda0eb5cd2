"""Slack delivery: the notifier that drains the outbox into Slack (with card_updates and chart_lane), its per-channel
pacing and the posting calls.

It sits above the store (it reads jobs' outbox and store) and beside the block builders; jobs/ never imports it.
"""
