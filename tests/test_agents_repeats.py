"""A daemon stuck on the same error logs it once, then only a count (protocol.agents.common.Repeats)."""

from __future__ import annotations

import logging

import pytest

from protocol.agents.common import Repeats, guarded, repeats


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_repeated_message_is_logged_once_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("verigrad.test-repeats")
    r = Repeats(every=10)
    with caplog.at_level(logging.INFO, logger=log.name):
        written = [r.log(log, logging.WARNING, "a", "event=reverted action=a") for _ in range(25)]
        assert written == [True] + [False] * 24
        assert _lines(caplog) == ["event=reverted action=a", "event=repeated site=a times=10",
                                  "event=repeated site=a times=20"]
        caplog.clear()
        r.log(log, logging.WARNING, "b", "event=reverted action=b")  # another site: its own line
        r.log(log, logging.WARNING, "a", "event=reverted action=a other")  # a change: the count, the new line
        r.log(log, logging.WARNING, "a", "event=reverted action=a other")
        r.clear(log, "a")
        r.clear(log, "b")  # logged once only: nothing to count
        r.log(log, logging.WARNING, "a", "event=reverted action=a other")  # after a clear: in full again
        assert _lines(caplog) == ["event=reverted action=b", "event=repeats_ended site=a times=25",
                                  "event=reverted action=a other", "event=repeats_ended site=a times=2",
                                  "event=reverted action=a other"]


def test_guarded_logs_a_task_failing_every_tick_once(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("verigrad.test-guarded")

    def fail() -> None:
        raise ValueError("the artifact is missing")

    with caplog.at_level(logging.INFO, logger=log.name):
        for _ in range(5):
            guarded(log, 7, fail)
        guarded(log, 7, lambda: None)
    assert [r.levelname for r in caplog.records] == ["ERROR", "INFO"]
    assert caplog.records[0].exc_info is not None  # the first one with its traceback
    assert _lines(caplog)[1] == "event=repeats_ended site=task:7 times=5"
    assert repeats(log) is repeats(log)
