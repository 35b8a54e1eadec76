"""The in-process wake-up loses no notify that comes between a worker's look and its wait."""

from __future__ import annotations

import threading

from jobyard.services.wakeup import Wakeup


def test_a_notify_after_the_mark_is_seen() -> None:
    wakeup = Wakeup()
    mark = wakeup.mark()
    wakeup.notify()  # as if a launch came while the worker was looking for work

    assert wakeup.mark() != mark


def test_without_a_notify_the_mark_stays() -> None:
    wakeup = Wakeup()
    mark = wakeup.mark()
    assert wakeup.mark() == mark


def test_a_notify_from_another_thread_wakes_every_subscriber() -> None:
    wakeup = Wakeup()
    woken = [threading.Event(), threading.Event()]
    for event in woken:
        wakeup.subscribe(event.set)
    timer = threading.Timer(0.05, wakeup.notify)
    timer.start()
    assert all(event.wait(5.0) for event in woken)
    timer.join()


def test_an_unsubscribed_callback_is_not_called() -> None:
    wakeup = Wakeup()
    calls: list[int] = []

    def first() -> None:
        calls.append(1)

    wakeup.subscribe(first)
    wakeup.subscribe(lambda: calls.append(2))
    wakeup.unsubscribe(first)
    wakeup.notify()
    assert calls == [2]
