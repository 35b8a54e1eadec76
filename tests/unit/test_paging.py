"""Which end of a list a page is read from, and what it skips and takes there."""

from __future__ import annotations

import pytest

from jobyard.domain.paging import PageRequest, Slice, nearer_slice


@pytest.mark.parametrize(
    ("page", "limit", "total", "expected"),
    [
        (1, 25, 1000, Slice(0, 25, backwards=False)),
        (20, 25, 1000, Slice(475, 25, backwards=False)),  # the middle: forwards
        (21, 25, 1000, Slice(475, 25, backwards=True)),  # rows 500-524, 475 from the end
        (40, 25, 1000, Slice(0, 25, backwards=True)),  # the last page
        (5, 25, 103, Slice(0, 3, backwards=True)),  # a last page of 3 rows
        (4, 25, 103, Slice(3, 25, backwards=True)),  # rows 75-99
        (6, 25, 103, Slice(125, 25, backwards=False)),  # past the end: nothing to take
        (1, 25, 0, Slice(0, 25, backwards=False)),
        (2, 1, 2, Slice(0, 1, backwards=True)),
    ],
)
def test_a_page_is_read_from_the_nearer_end(
    page: int, limit: int, total: int, expected: Slice
) -> None:
    assert nearer_slice(PageRequest(page, limit), total) == expected


def test_every_row_is_on_one_page_read_from_either_end() -> None:
    for total in range(0, 40):
        for limit in (1, 3, 4, 25):
            rows = list(range(total))
            paged = []
            for page in range(1, total // limit + 3):
                part = nearer_slice(PageRequest(page, limit), total)
                assert part is not None
                if part.backwards:
                    backwards = rows[::-1][part.offset : part.offset + part.limit]
                    paged += backwards[::-1]
                else:
                    paged += rows[part.offset : part.offset + part.limit]
            assert paged == rows, (total, limit)


def test_no_limit_reads_everything_forwards() -> None:
    assert nearer_slice(PageRequest(3, None), 10) is None
