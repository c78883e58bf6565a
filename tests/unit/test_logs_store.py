"""The log store: append, read, tail, follow, snippet, retention, names."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from securebuild.logs import LogStore, log_snippet
from securebuild.logs.store import LogStoreError


@pytest.fixture
def store(tmp_path: Path) -> LogStore:
    return LogStore(tmp_path / "logs", poll_interval=0.01)


def test_append_read_tail(store: LogStore) -> None:
    log = store.log("team-a", "web-1")
    log.start()
    log.append("one")
    log.append("two\nthree\r")
    log.append_lines(["four", "five", "six"])
    assert log.read() == ["one", "two", "three", "four", "five", "six"]
    assert log.tail(2) == ["five", "six"]
    assert log.tail(0) == []
    assert not log.finished
    log.finish()
    assert log.finished
    assert log.path == store.root / "team-a" / "web-1.log"


def test_lines_are_visible_to_readers_before_finish(store: LogStore) -> None:
    log = store.log("ns", "b-1")
    log.start()
    log.append("visible at once")
    assert store.log("ns", "b-1").read() == ["visible at once"]


def test_incomplete_last_line_is_not_read(store: LogStore) -> None:
    log = store.log("ns", "b-2")
    log.path.parent.mkdir(parents=True)
    log.path.write_bytes(b"done\nhalf")
    assert log.read() == ["done"]


def test_start_appends_unless_truncated(store: LogStore) -> None:
    log = store.log("ns", "b-3")
    log.start()
    log.append("attempt 0")
    log.finish()
    log.start()
    assert not log.finished
    log.append("attempt 1")
    assert log.read() == ["attempt 0", "attempt 1"]
    log.start(truncate=True)
    log.append("fresh")
    assert log.read() == ["fresh"]


def test_append_without_start_is_an_error(store: LogStore) -> None:
    with pytest.raises(LogStoreError, match="not open"):
        store.log("ns", "b-4").append("x")


def test_follow_yields_lines_as_they_arrive_and_ends_at_finish(store: LogStore) -> None:
    log = store.log("ns", "b-5")
    received: list[tuple[float, str]] = []
    written: dict[str, float] = {}

    def writer() -> None:
        time.sleep(0.1)  # the follower starts before the log exists
        log.start()
        for i in range(5):
            written[f"line {i}"] = time.monotonic()
            log.append(f"line {i}")
            time.sleep(0.05)
        log.finish()

    thread = threading.Thread(target=writer)
    thread.start()
    for line in store.log("ns", "b-5").follow(wait_for_start=5):
        received.append((time.monotonic(), line))
    thread.join()
    assert [line for _, line in received] == [f"line {i}" for i in range(5)]
    # each line arrived while the writer was still running, within a few poll intervals
    for at, line in received:
        assert at - written[line] < 0.5


def test_follow_resumes_at_start_line_and_stops_on_request(store: LogStore) -> None:
    log = store.log("ns", "b-6")
    log.start()
    log.append_lines(["a", "b", "c"])
    stop = threading.Event()
    got = []
    for line in log.follow(start_line=1, stop=stop.is_set):
        got.append(line)
        if line == "c":
            stop.set()
    assert got == ["b", "c"]


def test_follow_of_a_missing_log_gives_up(store: LogStore) -> None:
    start = time.monotonic()
    assert list(store.log("ns", "never").follow(wait_for_start=0.1)) == []
    assert time.monotonic() - start < 2


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("..", "x"), ("ns", "../etc/passwd"), ("NS", "x"), ("ns", ""), ("ns", "a/b"), ("-a", "b")],
)
def test_names_that_could_escape_are_refused(store: LogStore, namespace: str, name: str) -> None:
    with pytest.raises(LogStoreError, match="invalid"):
        store.log(namespace, name)


def test_expire_removes_old_logs_only(store: LogStore) -> None:
    old = store.log("ns", "old")
    old.start()
    old.append("x")
    old.finish()
    new = store.log("ns", "new")
    new.start()
    new.append("y")
    new.finish()
    lonely = store.log("gone", "old")
    lonely.start()
    lonely.finish()
    ten_days_ago = time.time() - 10 * 86400
    for path in (old.path, lonely.path):
        os.utime(path, (ten_days_ago, ten_days_ago))
    removed = store.expire(7)
    assert sorted(removed) == sorted([old.path, lonely.path])
    assert not old.path.exists() and not old.done_path.exists()
    assert new.read() == ["y"]
    assert not (store.root / "gone").exists()


def test_snippet_is_last_five_lines_folded() -> None:
    long = "x" * 58 + "MIDDLE" * 20 + "y" * 59
    lines = [f"l{i}" for i in range(7)] + [long]
    snippet = log_snippet("\n".join(lines))
    assert snippet.split("\n")[:4] == ["l3", "l4", "l5", "l6"]
    folded = snippet.split("\n")[4]
    assert folded == "x" * 58 + "..." + "y" * 59
    assert len(folded) == 120
    assert log_snippet("a" * 120) == "a" * 120
    assert log_snippet("") == ""


def test_buildlog_snippet(store: LogStore) -> None:
    log = store.log("ns", "snip")
    log.start()
    log.append_lines([str(i) for i in range(10)])
    assert log.snippet() == "5\n6\n7\n8\n9"
