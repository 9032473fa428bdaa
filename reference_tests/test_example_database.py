"""A failure found by one worker of a campaign replays on another through a shared example
database (npconv.strategies.example_database): a directory, or Redis.

Each test plays two machines. Machine A explores a property that fails for x >= 1000 and
saves the shrunk counterexample (x = 1000) in the database. Machine B opens its own database
object on the same directory or server and runs only Hypothesis's reuse phase, which
generates nothing: B fails with exactly A's example if, and only if, the example travelled.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import unittest

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from npconv.strategies import example_database


def _property(database, phases, seen: list):
    @settings(database=database, phases=phases, derandomize=False, max_examples=200, deadline=None)
    @given(st.integers(min_value=0, max_value=10**6))
    def below_a_thousand(x):
        seen.append(x)
        assert x < 1000

    return below_a_thousand


def _replays_across_machines(open_database) -> None:
    found = []
    with pytest.raises(AssertionError):
        _property(open_database(), tuple(Phase), found)()      # machine A explores, shrinks, saves
    assert found and found[-1] == 1000

    replayed = []
    with pytest.raises(AssertionError):
        _property(open_database(), (Phase.reuse,), replayed)()  # machine B only replays
    assert set(replayed) == {1000}   # the saved example, then its final, reporting run


def test_a_failure_replays_from_a_shared_directory(tmp_path):
    _replays_across_machines(lambda: example_database(str(tmp_path / "examples")))


def test_an_empty_database_replays_nothing(tmp_path):
    """The control: without a saved example, the reuse phase has no example to run."""
    seen = []
    with pytest.raises(unittest.SkipTest, match="told to run no"):  # "examples" or "test cases", by version
        _property(example_database(str(tmp_path / "empty")), (Phase.reuse,), seen)()
    assert seen == []


def test_bad_database_names_are_refused():
    with pytest.raises(ValueError, match="directory path or a redis:// URL"):
        example_database("")
    with pytest.raises(ValueError, match="unknown scheme 'http'"):
        example_database("http://example.org/db")


@pytest.fixture
def redis_url():
    """A throwaway redis-server on a free local port, stopped after the test."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = pytest.importorskip("redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail("redis-server did not start within 5 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_failure_replays_through_redis(redis_url):
    _replays_across_machines(lambda: example_database(redis_url))
