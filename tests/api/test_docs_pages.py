"""`/docs` works offline: the page and everything it loads come from this server, without
credentials."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

# What the page loads: stylesheets, icons, scripts, and the document Swagger UI fetches.
REFERENCES = re.compile(r"""(?:href|src)="([^"]+)"|url:\s*'([^']+)'""")
ANY_URL = re.compile(r"""https?://[^\s"'<>)]+""")
EXPECTED_TYPES = {
    ".css": "text/css",
    ".js": "javascript",
    ".png": "image/png",
    ".json": "application/json",
}


def _references(html: str) -> list[str]:
    return [href or url for href, url in REFERENCES.findall(html)]


def test_the_docs_page_loads_only_from_this_server_without_credentials(
    client: TestClient,
) -> None:
    anonymous = TestClient(client.app)
    page = anonymous.get("/docs")
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert ANY_URL.findall(html) == []
    assert '"validatorUrl": null' in html
    assert '"persistAuthorization": true' in html

    references = _references(html)
    suffixes = {"." + ref.rsplit(".", 1)[-1] for ref in references}
    assert suffixes == set(EXPECTED_TYPES), references
    for ref in references:
        parts = urlsplit(ref)
        assert (parts.scheme, parts.netloc) == ("", ""), ref
        assert ref.startswith("/"), ref
        answer = anonymous.get(ref)
        assert answer.status_code == 200, (ref, answer.status_code)
        expected = EXPECTED_TYPES["." + ref.rsplit(".", 1)[-1]]
        assert expected in answer.headers["content-type"], (ref, answer.headers)
        assert answer.content, ref


def test_redoc_is_not_served(client: TestClient) -> None:
    # No package ships ReDoc, and from a CDN it would not work offline.
    assert TestClient(client.app).get("/redoc").status_code == 404
