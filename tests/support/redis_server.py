"""A redis-server of the test's own, on a free port: tests that stop, restart or reconfigure
Redis must never touch the shared one at 6379. The server is stack's; here a missing
redis-server skips the test, or fails it where every part must be there (support.required)."""

from __future__ import annotations

from stack import RedisServer, RedisServerMissing
from support.required import missing


class OwnRedis(RedisServer):
    """stack.RedisServer (``OwnRedis(directory, appendonly="yes", ...)``) for a test."""

    def start(self, timeout: float = 20.0) -> OwnRedis:
        try:
            super().start(timeout)
        except RedisServerMissing:
            missing("no redis-server on PATH")
        return self
