"""The web console end to end in headless Debian Chromium driven by Playwright: log in with an
API key, open the approvals inbox, see exactly what will run, approve it with a comment, watch
the call run once, and read the conversation's timeline. Screenshots are written to
$CALLGATE_SCREENSHOTS (default /tmp/callgate-screenshots)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway import Gateway

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("CALLGATE_SCREENSHOTS", "/tmp/callgate-screenshots"))

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
    reason="Debian's chromium is not installed (make test installs it)",
)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[Gateway, str]]:
    gw = Gateway.prepare(tmp_path)
    url = gw.start("--model", "tests.mcp_fixtures.model:model", "--runs", str(tmp_path / "runs.db"))
    try:
        yield gw, url
    finally:
        gw.stop()


def _events(text: str) -> list[tuple[str, dict]]:
    frames = [dict(ln.split(": ", 1) for ln in f.splitlines()) for f in text.strip().split("\n\n")]
    return [(f["event"], json.loads(f["data"])) for f in frames]


def test_log_in_open_a_conversation_approve_and_watch_it_finish(
    gateway: tuple[Gateway, str],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    gw, url = gateway
    runlog = Path(gw.env["CG_RUNLOG"])
    started = httpx.post(
        f"{url}/v1/conversations",
        headers=gw.headers("ana"),
        timeout=60,
        json={"message": "Please refund order A-42", "run_id": "support-chat-1"},
    )
    events = _events(started.text)
    assert events[-1][0] == "done" and events[-1][1]["status"] == "paused"
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{url}/console/approvals")
        expect(page).to_have_url(f"{url}/console/login")  # not reachable without a session
        page.fill("#api_key", "cg_not_a_key")
        page.click("button[type=submit]")
        expect(page.get_by_role("alert")).to_contain_text("not accepted")
        page.fill("#api_key", gw.keys["boss"])
        page.click("button[type=submit]")
        expect(page.get_by_test_id("pending-count")).to_have_text("1")
        expect(page.get_by_test_id("chain-status")).to_have_text("intact")
        page.screenshot(path=str(SHOTS / "1-overview.png"), full_page=True)

        page.click("text=Conversations")
        page.locator("table a", has_text="support-chat-1").click()
        timeline = page.locator("ol.timeline")
        expect(timeline).to_contain_text("lookup_order")
        expect(timeline).to_contain_text("pending_approval")
        expect(timeline).not_to_contain_text("4000123412341234")  # redacted in the record
        page.screenshot(path=str(SHOTS / "2-conversation-paused.png"), full_page=True)

        page.click("text=Approvals")
        row = page.get_by_test_id("pending").locator("tbody tr")
        expect(row).to_have_count(1)
        for shown in ("refund", "A-42", "ana", "refunds"):
            expect(row).to_contain_text(shown)
        expect(row).not_to_contain_text("4000123412341234")  # masked
        page.screenshot(path=str(SHOTS / "3-inbox.png"), full_page=True)

        row.get_by_role("link", name="Review").click()
        expect(page.get_by_test_id("status")).to_have_text("pending")
        expect(page.get_by_test_id("arguments")).to_contain_text("129.5")
        page.fill("#comment", "customer called, verified")
        page.screenshot(path=str(SHOTS / "4-review.png"), full_page=True)
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_test_id("status")).to_have_text("approved")
        assert not runlog.exists()  # approving alone runs nothing

        resumed = httpx.post(
            f"{url}/v1/runs/support-chat-1/resume", headers=gw.headers("ana"), timeout=60
        ).json()
        assert resumed["status"] == "completed"
        assert resumed["output"] == "Refunded 129.50 EUR on order A-42."
        page.reload()
        expect(page.get_by_test_id("status")).to_have_text("done")
        expect(page.get_by_test_id("result")).to_contain_text("refunded 129.5")
        page.screenshot(path=str(SHOTS / "5-done.png"), full_page=True)

        page.click("text=Conversations")
        page.locator("table a", has_text="support-chat-1").click()
        expect(page.locator("ol.timeline li.call")).to_have_count(3)  # + model turns
        expect(page.locator("ol.timeline")).to_contain_text("refunded 129.5 on A-42")
        page.screenshot(path=str(SHOTS / "6-conversation-finished.png"), full_page=True)
        browser.close()

    assert runlog.read_text().splitlines() == ["refund A-42 129.5"]
