"""The in-process wake-up loses no notify that comes between a worker's look and its wait."""

from __future__ import annotations

import threading
import time

from jobyard.store.wakeup import Wakeup


def test_a_notify_after_the_mark_ends_the_wait_at_once() -> None:
    wakeup = Wakeup()
    mark = wakeup.mark()
    wakeup.notify()  # as if a launch came while the worker was looking for work

    began = time.monotonic()
    wakeup.wait(5.0, since=mark)

    assert time.monotonic() - began < 1.0


def test_a_wait_without_a_notify_lasts_its_timeout() -> None:
    wakeup = Wakeup()
    began = time.monotonic()
    wakeup.wait(0.1)
    assert time.monotonic() - began >= 0.09


def test_a_notify_from_another_thread_wakes_the_waiter() -> None:
    wakeup = Wakeup()
    timer = threading.Timer(0.05, wakeup.notify)
    timer.start()
    began = time.monotonic()
    wakeup.wait(5.0)
    timer.join()
    assert time.monotonic() - began < 1.0
