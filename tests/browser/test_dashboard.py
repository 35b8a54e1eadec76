"""The dashboard in a real browser: signing in, launching from the form, a log arriving live,
the jobs table's filters and live statuses, cancelling, and what a viewer and another
customer see. `JOBYARD_SCREENSHOTS=<folder>` saves the main pages there (docs/screenshots)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ADMIN_PASSWORD, OTHER_PASSWORD, VIEWER_PASSWORD, Site

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
SCREENSHOTS = os.environ.get("JOBYARD_SCREENSHOTS", "")


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


def sign_in(page: Any, login: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def shot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def launch(site: Site, package: str, **body: Any) -> str:
    answer = site.api.post("/jobs/", json={"package_id": site.packages[package], **body})
    answer.raise_for_status()
    return str(answer.json()["data"]["id"])


def test_session_cookie_is_httponly_strict_and_secure(page: Any) -> None:
    sign_in(page)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "jobyard_session"]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"]
    assert page.evaluate("document.cookie").find("jobyard_session") == -1


def test_wrong_password_is_refused_with_a_message(page: Any) -> None:
    page.goto("/login")
    page.get_by_label("Login").fill("admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong login or password")


def test_launch_from_the_form_and_watch_the_log_arrive(page: Any, site: Site) -> None:
    sign_in(page)
    page.get_by_role("link", name="Launch").click()
    page.get_by_label("Package").select_option(label="ticker")
    page.get_by_label("Tags").fill("nightly, browser")
    page.get_by_label("Testvars").fill("speed=fast")
    shot(page, "launch")
    page.get_by_role("button", name="Launch").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    log = page.locator("#log-output")
    expect(log).to_contain_text("line 1")
    # Still running when the first line shows: it came live, not with a reload.
    assert "line 3" not in log.inner_text()
    expect(log).to_contain_text("line 3")
    expect(log.locator(".ansi-fg-1")).to_have_text("red start")
    expect(page.locator("#job-status")).to_have_text("completed")
    expect(page.locator("#log-state")).to_contain_text("The job ended: completed, exit code 0")
    shot(page, "job")


def test_the_log_follows_the_job_across_its_attempts(page: Any, site: Site) -> None:
    sign_in(page)
    job = launch(site, "flaky")
    page.goto(f"/jobs/{job}")  # while its first attempt runs
    log = page.locator("#log-output")
    # The page may open before the first attempt starts: then both are marked.
    expect(log.locator(".attempt").last).to_have_text(re.compile("attempt 2"), timeout=20_000)
    expect(page.locator("#log-state")).to_contain_text("The job ended: completed, exit code 0")
    assert log.inner_text().count("attempt output") == 2
    expect(page.locator("#summary tbody tr").first).to_contain_text("failed")


def test_launch_form_shows_the_api_errors_next_to_the_field(page: Any) -> None:
    sign_in(page)
    page.goto("/launch")
    page.get_by_label("Package").select_option(label="quick")
    page.get_by_label("Priority").fill("5000")
    page.get_by_role("button", name="Launch").click()
    problem = page.locator("#priority-problem")
    expect(problem).to_contain_text("less than or equal to 1000")
    expect(page.get_by_label("Priority")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Priority").fill("")
    page.get_by_label("Run at").fill("tomorrow")
    page.get_by_role("button", name="Launch").click()
    expect(page.locator("#run_at-problem")).to_be_visible()


def test_filter_the_jobs_table_and_see_statuses_change_live(page: Any, site: Site) -> None:
    failing = launch(site, "failing")
    quick = launch(site, "quick", options={"tags": ["filtered"]})
    sleeper = launch(site, "sleeper", options={"tags": ["filtered"]})
    sign_in(page)
    page.goto("/jobs")
    page.get_by_label("Tag").fill("filtered")
    page.get_by_role("button", name="Apply").click()
    rows = page.locator("#job-rows tr")
    expect(rows).to_have_count(2)
    expect(page.locator(f"#job-{quick}")).to_be_visible()
    expect(page.locator(f"#job-{failing}")).to_have_count(0)
    expect(page.locator(".api-query")).to_contain_text("filter=tags%40%3E%7Bfiltered%7D")
    # The sleeper's row turns from pending to running without a reload.
    expect(page.locator(f"#job-{sleeper} .badge")).to_have_text("running")
    page.locator("select[name=status]").select_option("failed")
    page.get_by_label("Tag").fill("")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(f"#job-{failing} .badge")).to_have_text("failed")
    expect(page.locator(f"#job-{quick}")).to_have_count(0)
    shot(page, "jobs")
    # The search box: part of a package's name, in any case, as an indexed filter.
    page.goto("/jobs?q=AILIN")
    expect(page.locator(f"#job-{failing}")).to_be_visible()
    expect(page.locator(f"#job-{quick}")).to_have_count(0)
    failing_package = site.packages["failing"]
    expect(page.locator(".api-query")).to_contain_text(f"package_id%3C%40%7B{failing_package}%7D")
    site.api.post(f"/jobs/{sleeper}/cancel/").raise_for_status()
    page.get_by_role("link", name="Overview").click()
    expect(page.locator(".count.bad .n").first).not_to_have_text("0")
    shot(page, "overview")


def test_cancel_a_running_job_from_its_page(page: Any, site: Site) -> None:
    job = launch(site, "sleeper")
    sign_in(page)
    page.goto(f"/jobs/{job}")
    expect(page.locator("#job-status")).to_have_text("running")
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status").first).to_contain_text("cancel requested")
    expect(page.locator("#job-status")).to_have_text("cancelled")


def test_bulk_cancel_from_the_table(page: Any, site: Site) -> None:
    jobs = [launch(site, "quick", run_at="2999-01-01T00:00:00Z") for _ in range(2)]
    sign_in(page)
    page.goto("/jobs?status=pending")
    for job in jobs:
        page.get_by_label(f"Select job {job}").check()
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".notice")).to_have_text("cancel: 2 of 2 done")
    for job in jobs:
        assert site.api.get(f"/jobs/{job}/").json()["data"]["status"] == "cancelled"


def test_a_viewer_sees_no_buttons(page: Any, site: Site) -> None:
    job = launch(site, "quick")
    sign_in(page, "viewer", VIEWER_PASSWORD)
    expect(page.get_by_role("link", name="Launch")).to_have_count(0)
    page.goto("/jobs")
    expect(page.locator(f"#job-{job}")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)
    page.goto(f"/jobs/{job}")
    expect(page.locator("#job-status")).to_be_visible()
    expect(page.get_by_role("button", name="Relaunch")).to_have_count(0)
    page.goto(f"/packages/{site.packages['quick']}")
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    # And what it may not do is refused by the services whatever it sends.
    assert page.goto("/launch").status == 403


def test_another_customer_never_sees_the_first_ones_jobs(page: Any, site: Site) -> None:
    mine = launch(site, "quick")
    sign_in(page, "other-admin", OTHER_PASSWORD)
    page.goto("/jobs")
    expect(page.locator(f"#job-{site.other_job}")).to_be_visible()
    expect(page.locator(f"#job-{mine}")).to_have_count(0)
    assert page.goto(f"/jobs/{mine}").status == 404
    assert page.goto(f"/packages/{site.packages['quick']}").status == 404


def test_a_system_admin_switches_customer(page: Any, site: Site) -> None:
    sign_in(page)
    page.get_by_label("Customer").select_option(label="2 · other")
    page.get_by_role("button", name="Switch").click()
    expect(page.locator(".notice")).to_have_text("acting for customer 2")
    page.goto("/jobs")
    expect(page.locator(f"#job-{site.other_job}")).to_be_visible()


def test_a_large_log_is_paged_not_loaded_whole(page: Any, site: Site) -> None:
    job = launch(site, "big")
    deadline = time.monotonic() + 60
    while site.api.get(f"/jobs/{job}/").json()["data"]["status"] != "completed":
        assert time.monotonic() < deadline, "the big job did not complete"
        page.wait_for_timeout(100)
    sign_in(page)
    page.goto(f"/jobs/{job}")
    log = page.locator("#log-output")
    expect(log).to_contain_text("line 000370000 of a big log")
    shown = len(log.inner_text())
    assert shown < 70 * 1024, shown
    page.get_by_role("button", name="Load earlier output").click()
    expect(log).to_contain_text("line 000366000 of a big log")  # in the earlier page only
    assert 120 * 1024 < len(log.inner_text()) < 140 * 1024


def test_keyboard_and_phone_width(browser: Any, site: Site) -> None:
    context = browser.new_context(base_url=site.url, viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto("/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")  # the brand link
    page.keyboard.press("Tab")
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/$"))
    for path in ("/", "/jobs", "/launch", f"/packages/{site.packages['quick']}"):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (path, width)
    shot(page, "jobs-phone")
    context.close()


def test_forms_refuse_a_request_without_the_csrf_token(site: Site) -> None:
    with httpx.Client(base_url=site.url) as browserless:
        signed = browserless.post("/login", data={"login": "admin", "password": ADMIN_PASSWORD})
        cookie = signed.cookies.get("jobyard_session") or re.search(
            "jobyard_session=([^;]+)", signed.headers["set-cookie"]
        ).group(1)
        job = launch(site, "quick", run_at="2999-01-01T00:00:00Z")
        headers = {"Cookie": f"jobyard_session={cookie}"}
        forged = browserless.post(f"/jobs/{job}/cancel", headers=headers, data={})
        assert forged.status_code == 403
        assert site.api.get(f"/jobs/{job}/").json()["data"]["status"] == "pending"
        page = browserless.get("/launch", headers=headers).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        elsewhere = {**headers, "Origin": "https://evil.example"}
        refused = browserless.post(
            f"/jobs/{job}/cancel", headers=elsewhere, data={"csrf_token": token}
        )
        assert refused.status_code == 403
        done = browserless.post(f"/jobs/{job}/cancel", headers=headers, data={"csrf_token": token})
        assert done.status_code == 303
        assert site.api.get(f"/jobs/{job}/").json()["data"]["status"] == "cancelled"
