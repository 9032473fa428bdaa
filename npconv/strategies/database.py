"""A Hypothesis example database shared across processes and machines.

Hypothesis saves every failing example it finds in an example database and replays the
saved examples first on the next run. By default that database is a directory in the
working tree (`.hypothesis/`), so a failure found by one worker of a campaign replays only
there. `example_database(where)` opens a database that every worker points at:

    where = "/shared/npconv-examples"        a directory (a network file system for machines)
    where = "redis://host:6379/0"            Hypothesis's Redis-backed database (pip install redis)

    settings.register_profile("campaign", database=example_database(where), ...)

The reference tests do this for every profile when `NPCONV_HYPOTHESIS_DB` is set
(reference_tests/conftest.py), so a thorough campaign spread over cores and machines
(docs/testing.md) replays a failure found on one of them everywhere.
"""

from __future__ import annotations

from urllib.parse import urlparse

__all__ = ["example_database"]


def example_database(where: str):
    """The Hypothesis ExampleDatabase that `where` names: a `redis://` (or `rediss://`) URL,
    or a directory path (created on first write)."""
    if not isinstance(where, str) or not where:
        raise ValueError(f"example_database expects a directory path or a redis:// URL, got {where!r}")
    scheme = urlparse(where).scheme
    if scheme in ("redis", "rediss", "unix"):
        try:
            import redis
        except ImportError:
            raise ImportError(f"the example database {where!r} needs the redis package: pip install redis") from None
        from hypothesis.extra.redis import RedisExampleDatabase

        return RedisExampleDatabase(redis.Redis.from_url(where))
    if scheme and len(scheme) > 1:  # "C:" is a Windows drive, not a scheme
        raise ValueError(f"example_database: unknown scheme {scheme!r} in {where!r} (a directory or redis:// URL)")
    from hypothesis.database import DirectoryBasedExampleDatabase

    return DirectoryBasedExampleDatabase(where)
