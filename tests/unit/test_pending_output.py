"""Pending output: kept in order, moved to a private file past the memory limit, removed
once stored."""

from __future__ import annotations

import stat
from pathlib import Path

from jobyard.worker.pending import MEMORY_BYTES, PendingOutput


def test_output_past_the_memory_limit_moves_to_a_private_file_in_order(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    pending = PendingOutput(spool, "run-7")
    piece = b"a" * (MEMORY_BYTES // 3)
    offset = 0
    expected = []
    for i in range(8):  # alternating streams; past the limit twice
        stream = "stdout" if i % 2 == 0 else "stderr"
        data = piece + str(i).encode()
        pending.add(stream, offset, data)
        expected.append((stream, offset, data))
        offset += len(data)

    assert pending.memory_bytes <= MEMORY_BYTES
    spooled = spool / "run-7"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert stat.S_IMODE(spooled.stat().st_mode) == 0o600
    assert pending.chunks() == expected
    pending.clear()
    assert not pending
    assert not spooled.exists()
    assert pending.chunks() == []


def test_small_output_stays_in_memory_and_joins_pieces_of_one_stream(tmp_path: Path) -> None:
    pending = PendingOutput(tmp_path / "spool", "run-8")
    pending.add("stdout", 0, b"one ")
    pending.add("stdout", 4, b"two\n")
    pending.add("stderr", 8, b"oops\n")
    assert pending.chunks() == [("stdout", 0, b"one two\n"), ("stderr", 8, b"oops\n")]
    assert not (tmp_path / "spool").exists()
