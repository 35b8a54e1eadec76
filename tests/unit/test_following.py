"""A reader's place in one stream: own offsets mapped onto the merged log, repeats of a
chunk read once, and UTF-8 held back until its character is whole."""

from __future__ import annotations

from jobyard.domain.following import StreamCursor, cursor_at, cursor_at_merged
from jobyard.domain.models import LogChunk

# Merged log: stdout "ab" at 0, stderr "XY" at 2, stdout "cd" at 4; stdout "ab" stored again,
# and once more with the "c" that came before its write was acknowledged.
CHUNKS = [
    LogChunk(0, "stdout", b"ab"),
    LogChunk(0, "stdout", b"ab"),
    LogChunk(2, "stderr", b"XY"),
    LogChunk(4, "stdout", b"cd"),
    LogChunk(4, "stdout", b"c"),
]
STDOUT = [(c.offset, len(c.data)) for c in CHUNKS if c.stream == "stdout"]


def _read(cursor: StreamCursor) -> bytes:
    return b"".join(cursor.take(c) for c in CHUNKS)


def test_a_stream_is_read_once_whatever_was_stored_twice() -> None:
    assert _read(StreamCursor("stdout")) == b"abcd"
    assert _read(StreamCursor("stderr")) == b"XY"


def test_an_own_offset_lands_on_its_byte_in_the_merged_log() -> None:
    for offset, rest in enumerate([b"abcd", b"bcd", b"cd", b"d", b""]):
        cursor = cursor_at("stdout", STDOUT, offset)
        assert _read(cursor) == rest
        assert cursor.sent == 4


def test_past_the_stored_end_a_cursor_waits_and_drops_up_to_its_offset() -> None:
    cursor = cursor_at("stdout", STDOUT[:1], 3)
    assert (cursor.merged, cursor.own) == (2, 2)
    assert _read(cursor) == b"d"
    assert cursor.sent == 4


def test_a_merged_offset_counts_each_streams_bytes_before_it() -> None:
    cursor = cursor_at_merged("stdout", STDOUT, 3)
    assert (cursor.own, _read(cursor)) == (2, b"cd")
    stderr = cursor_at_merged("stderr", [(2, 2)], 3)
    assert (stderr.own, _read(stderr)) == (1, b"Y")


def test_a_character_split_between_chunks_is_given_whole_and_counted_when_given() -> None:
    cursor = StreamCursor("stdout")
    assert cursor.decode(cursor.take(LogChunk(0, "stdout", b"caf\xc3"))) == "caf"
    assert cursor.sent == 3
    assert cursor.decode(cursor.take(LogChunk(4, "stdout", b"\xa9\n"))) == "é\n"
    assert cursor.sent == 6
    broken = StreamCursor("stdout")
    assert broken.decode(broken.take(LogChunk(0, "stdout", b"x\xc3"))) == "x"
    assert broken.decode(b"", final=True) == "\ufffd"
    assert broken.sent == 2
