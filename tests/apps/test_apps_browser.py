"""Headless Debian Chromium (via playwright) against the frontend dev server (the one
scripts/run-local.sh uses) proxying /api to a real producer (waitress) and a real consumer."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable

import pytest
import redis
from appsupport import STREAM, Proc, db_values, start_consumer

from apps.devtools.servers import MariaDBServer, free_port, wait_port

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt chromium)")
def test_post_value_and_see_count_change(
    env: dict[str, str],
    consumer_env: dict[str, str],
    spawn: Callable[..., Proc],
    maria: MariaDBServer,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    start_consumer(spawn, consumer_env)
    api_port, web_port = free_port(), free_port()
    producer = spawn(
        "apps.producer",
        {**env, "PORT": str(api_port), "BIND_HOST": "127.0.0.1"},
    )
    wait_port(api_port, 30, producer.popen)
    web = spawn(
        "apps.frontend.devserver",
        {},
        ["--port", str(web_port), "--api", f"http://127.0.0.1:{api_port}"],
    )
    wait_port(web_port, 30, web.popen)

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = ctx.new_page()
            page.goto(f"http://127.0.0.1:{web_port}/")
            expect(page.get_by_test_id("count")).to_have_text("0", timeout=15_000)
            expect(page.get_by_test_id("latest")).to_have_text("none yet")
            assert page.get_by_role("alert").is_hidden()

            default = page.input_value("#value")
            assert default.isdigit()  # pre-filled with the epoch seconds
            page.fill("#value", "424242")
            page.click("#send")
            expect(page.locator("#result")).to_contain_text("Accepted 424242", timeout=15_000)
            expect(page.get_by_test_id("count")).to_have_text("1", timeout=20_000)
            expect(page.get_by_test_id("latest")).to_have_text("424242")

            page.fill("#value", "12.5")  # rejected in the page, nothing sent
            page.click("#send")
            expect(page.get_by_role("alert")).to_be_visible()

            # the API going away is shown as an error, not silently ignored
            producer.stop()
            page.click("#refresh")
            alert = page.get_by_role("alert")
            expect(alert).to_be_visible(timeout=15_000)
            expect(alert).to_contain_text("Could not load the count")
        finally:
            ctx.close()
    assert db_values(maria) == [424242]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt chromium)")
def test_a_submission_keeps_one_idempotency_key_across_retries(
    env: dict[str, str], spawn: Callable[..., Proc], rclient: redis.Redis
) -> None:
    """The page names each submission with a key, retries an unknown outcome with it, and
    offers to send it again under the same key; the queue ends up with the value once."""
    from playwright.sync_api import Route, expect, sync_playwright

    api_port, web_port = free_port(), free_port()
    producer = spawn("apps.producer", {**env, "PORT": str(api_port), "BIND_HOST": "127.0.0.1"})
    wait_port(api_port, 30, producer.popen)
    web = spawn(
        "apps.frontend.devserver", {},
        ["--port", str(web_port), "--api", f"http://127.0.0.1:{api_port}"],
    )  # fmt: skip
    wait_port(web_port, 30, web.popen)
    keys: list[str] = []
    unanswered = [3]  # the first three POSTs get "outcome unknown" (the value is not sent)

    def on_post(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        keys.append(route.request.headers.get("idempotency-key", ""))
        if unanswered[0] > 0:
            unanswered[0] -= 1
            route.fulfill(
                status=503, content_type="application/json",
                body=json.dumps({"error": "the queue did not answer in time", "status": 503,
                                 "outcome": "unknown", "key": keys[-1]}),
            )  # fmt: skip
        else:
            route.continue_()

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = ctx.new_page()
            page.route("**/api/count", on_post)
            page.goto(f"http://127.0.0.1:{web_port}/")
            page.fill("#value", "5150")
            page.click("#send")
            alert = page.get_by_role("alert")
            expect(alert).to_contain_text("not known whether 5150 was accepted", timeout=15_000)
            assert len(keys) == 3  # the first try and two automatic retries
            page.click("#send")  # the user sends it again: same value, same key
            expect(page.locator("#result")).to_contain_text("Accepted 5150", timeout=15_000)
            page.fill("#value", "5151")  # a new submission gets a new key
            page.click("#send")
            expect(page.locator("#result")).to_contain_text("Accepted 5151", timeout=15_000)
        finally:
            ctx.close()
    assert len(set(keys[:4])) == 1
    assert keys[0]
    assert keys[4] != keys[0]
    assert [f["count"] for _, f in rclient.xrange(STREAM)] == ["5150", "5151"]
