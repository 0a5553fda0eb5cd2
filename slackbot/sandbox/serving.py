"""The HTTP server under each stand-in: stdlib, one thread per connection, and a listen backlog sized for load.

`socketserver`'s default backlog is 5: a burst of 20 new connections overflows it, the kernel drops the SYNs and
clients retry a second later — a stall that real Slack and OpenPipe would not cause, and that the ack benchmark
would otherwise blame on the bot.
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class StandInServer(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True
