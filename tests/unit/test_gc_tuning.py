"""The server's collector and GIL settings, in a process of their own (they are process-wide)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_long_lived_objects_are_frozen_and_old_generations_collected_less_often() -> None:
    probe = textwrap.dedent(
        """
        import gc
        from jobyard.cli.gc_tuning import settle_garbage_collector
        from jobyard.api.app import create_app
        before = gc.get_threshold()
        settle_garbage_collector()
        print(before, gc.get_threshold(), gc.get_freeze_count() > 10_000)
        """
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split(") (")
    assert shown == ["(700, 10, 10", "700, 50, 100) True\n"]


def test_the_server_hands_the_gil_over_every_millisecond() -> None:
    probe = textwrap.dedent(
        """
        import sys
        from jobyard.cli.gil_tuning import share_the_gil_often
        before = sys.getswitchinterval()
        share_the_gil_often()
        print(before, sys.getswitchinterval())
        """
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert shown == ["0.005", "0.001"]
