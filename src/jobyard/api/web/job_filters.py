"""The jobs page's filter form in the API's own list grammar: every field becomes a
`filter=` or `sort=` of `GET /api/v1/jobs/`, checked by the same parser, and the page shows
the query it made so that a script can ask the same."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from jobyard.api import params
from jobyard.domain.listing import Listing
from jobyard.domain.statuses import JobStatus
from jobyard.domain.vocabulary import JOB_FIELDS

SORTS = {
    "-id": "Newest first",
    "id": "Oldest first",
    "-finished": "Recently finished",
    "status": "Status",
    "package_name": "Package",
}
LIMITS = ("25", "50", "100")
STATUSES = tuple(s.value for s in JobStatus)
FORM_FIELDS = ("status", "package", "tag", "since", "until", "q", "sort", "limit")


@dataclass(frozen=True)
class JobQuery:
    """What the form asked, as given (to fill the form again) and in the API's grammar."""

    form: dict[str, str]
    extra: list[str]  # `filter=` texts given as such (a link from another page, a script)
    sort: str
    limit: str
    page: str
    search: str = ""  # the search box's filter, once its packages are found (`searched`)

    @property
    def filters(self) -> list[str]:
        return [*_filter_texts(self.form), *([self.search] if self.search else []), *self.extra]

    def package_search(self) -> str:
        """The packages whose names the search box matches, as a packages list filter (or
        nothing to search for)."""
        text = self.form["q"]
        return f"name~*{re.escape(text)}" if text else ""

    def searched(self, package_ids: list[int]) -> JobQuery:
        """This query with the search box's text as the jobs of those packages: an indexed
        filter, where a pattern over every job's package name reads them all."""
        return replace(self, search="package_id<@{" + ",".join(map(str, package_ids)) + "}")

    def api_query(self) -> str:
        pairs = [("filter", f) for f in self.filters] + [("sort", self.sort)]
        return urlencode([*pairs, ("limit", self.limit), ("page", self.page)])

    def page_query(self, page: int | str) -> str:
        """This query on another page (the pager's links, the table's live refresh)."""
        given = [(k, v) for k, v in self.form.items() if v] + [("filter", f) for f in self.extra]
        return urlencode([*given, ("page", str(page))])


def read(query: QueryParams) -> JobQuery:
    form = {name: query.get(name, "").strip() for name in FORM_FIELDS}
    extra = [t for t in query.getlist("filter") if t.strip()]
    sort = form["sort"] if form["sort"] in SORTS else "-id"
    limit = form["limit"] if form["limit"] in LIMITS else LIMITS[0]
    return JobQuery(form, extra, sort, limit, query.get("page", "1") or "1")


def _filter_texts(form: dict[str, str]) -> list[str]:
    texts = []
    if form["status"]:
        texts.append(f"status={form['status']}")
    if form["package"]:
        texts.append(f"package_name={form['package']}")
    if form["tag"]:
        texts.append(f"tags@>{{{form['tag']}}}")
    if form["since"]:
        texts.append(f"created>={form['since']}")
    if form["until"]:
        texts.append(f"created<{form['until']}")
    return texts


def listing(found: JobQuery) -> Listing:
    """The API's own parse of the query: its errors are the API's, field named."""
    return params.listing(QueryParams(found.api_query()), JOB_FIELDS)
