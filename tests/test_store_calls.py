"""Store calls with a deadline (:class:`~pacha_sdk.storage.deadlines.StoreCalls`).

A call that never returns stands in for a store that never answers; the
black-hole tests in ``test_store_deadlines.py`` do the same with real
servers behind the fault proxy.
"""

from __future__ import annotations

import threading

import pytest

from pacha_sdk.storage.deadlines import StoreCalls
from tests.conftest import wait_until


def test_a_call_returns_its_result_and_raises_its_error() -> None:
    calls = StoreCalls("s3://bucket/exp")
    assert calls.call("read", lambda: 42, timeout=30) == 42

    def refuse() -> None:
        raise PermissionError("denied")

    with pytest.raises(PermissionError, match="denied"):
        calls.call("write", refuse, timeout=30)


def test_a_call_past_its_deadline_times_out_and_the_next_fails_at_once() -> None:
    calls = StoreCalls("s3://bucket/exp")
    answer = threading.Event()
    with pytest.raises(
        TimeoutError, match=r"s3://bucket/exp did not answer within 0.2 s \(write a\)"
    ):
        calls.call("write a", answer.wait, timeout=0.2)
    # The abandoned call still hangs: the next one does not queue behind it.
    with pytest.raises(TimeoutError, match=r"has not answered for \d+ s \(write a\)"):
        calls.call("write b", lambda: "b", timeout=30)
    answer.set()  # the store answers at last, and calls go through again

    def answers() -> bool:
        try:
            return calls.call("write c", lambda: "c", timeout=30) == "c"
        except TimeoutError:
            return False  # the helper thread is finishing the old call

    wait_until(answers)


def test_a_limit_cuts_short_a_wait_under_way() -> None:
    calls = StoreCalls("gs://bucket")
    never = threading.Event()
    failed: list[BaseException] = []

    def waiting() -> None:
        try:
            calls.call("write run.json", never.wait, timeout=3600)
        except TimeoutError as error:
            failed.append(error)

    caller = threading.Thread(target=waiting)
    caller.start()
    calls.limit(0.1)  # the run ends: nothing waits past a tenth of a second from now
    caller.join(30)
    assert not caller.is_alive()
    assert "did not answer" in str(failed[0])
    never.set()
    calls.limit(None)
