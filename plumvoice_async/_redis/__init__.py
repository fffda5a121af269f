"""``RedisGovernor``: one quota bucket per key, kept in Redis for every process and host.

- ``governor``: the ``Governor`` implementation and its fallback to a local bucket;
- ``lane``: one process's queue of waiters for one key, and the wake-ups that serve it;
- ``scripts``: the Lua scripts (``lua/``) as Python calls: loading, arguments, replies.

Importing this package does not import redis-py: that happens when a governor is built.
"""

from .governor import RedisGovernor

__all__ = ["RedisGovernor"]
