"""Which PostgreSQL servers count as on this host, whose reads by key run on the event loop
(`Database.quick_reads`); a server elsewhere keeps the hand-off to a thread."""

from __future__ import annotations

import pytest

from jobyard.store.db import on_this_host


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql+psycopg://u:p@localhost/jobyard",
        "postgresql://127.0.0.2/jobyard",
        "postgresql://[::1]:5432/jobyard",
        "postgresql:///jobyard",
        "postgresql:///jobyard?host=/var/run/postgresql",
        "postgresql:///jobyard?host=127.0.0.1:5432&host=localhost:5433",
        "postgresql:///jobyard?host=[::1]:5432",
    ],
)
def test_a_unix_socket_or_loopback_address_is_on_this_host(url: str) -> None:
    assert on_this_host(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://db.example.com/jobyard",
        "postgresql://10.0.0.5:5432/jobyard",
        "postgresql://[2001:db8::5]:5432/jobyard",
        "postgresql:///jobyard?host=127.0.0.1:5432&host=10.0.0.5:5432",
        "postgresql://localhost.example.com/jobyard",
    ],
)
def test_any_other_host_is_elsewhere(url: str) -> None:
    assert not on_this_host(url)


def test_a_url_without_a_host_is_where_pghost_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "db.example.com")
    assert not on_this_host("postgresql:///jobyard")
    monkeypatch.setenv("PGHOST", "/run/postgresql")
    assert on_this_host("postgresql:///jobyard")
