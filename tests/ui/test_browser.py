"""The workbench in a real headless Chromium: the runs page, a fit, a simulation watched to its end, a plan,
a comparison. Screenshots of each step are kept under test-artifacts/ui/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.ui.conftest import ARTIFACTS, run_ids

ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def offline(page: Page, base: str) -> list[str]:
    """Every request the page makes that leaves the workbench (there must be none: assets are local)."""
    away: list[str] = []
    page.on("request", lambda r: away.append(r.url) if not r.url.startswith(base) else None)
    return away


def test_runs_fit_simulate_plan_and_compare_in_a_browser(browser: Browser, server: str, registry_copy: Path) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    away = offline(page, server)

    page.goto(server + "/runs")
    expect(page.locator("#runs")).to_contain_text("fit llama-3.1-8b on l4")
    shot(page, "1-runs")

    page.goto(server + "/fit")
    expect(page.locator("#fit-result")).to_contain_text("Memory per device (h100-sxm")
    page.select_option("#f-device", "l4")  # the result follows the input, no button
    expect(page.locator("#fit-result")).to_contain_text("Memory per device (l4", timeout=15_000)
    expect(page.locator("#fit-result .js-plotly-plot").first).to_be_visible()
    shot(page, "2-fit")

    page.goto(server + "/simulate")
    page.fill("#f-rate", "2")
    page.fill("#f-duration", "15")
    page.click("#start")
    expect(page.locator("#job-state")).to_have_text("done", timeout=180_000)
    shot(page, "3-simulate-done")
    page.click("#open-run")
    expect(page.locator("h2", has_text="Latency distributions")).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    shot(page, "4-simulation")
    assert len(run_ids(registry_copy, "sim")) == 3  # noqa: PLR2004  (two seeded, one from the browser)

    plan = run_ids(registry_copy, "plan")[0]
    page.goto(f"{server}/runs/{plan}")
    expect(page.locator("h2", has_text="Trade-offs")).to_be_visible()
    expect(page.locator("details summary", has_text="deploy/launch.sh")).to_be_visible()
    shot(page, "5-plan")

    page.goto(server + "/runs?kind=sim")
    boxes = page.locator("input[name=ids]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("#compare")
    expect(page.locator("h1")).to_have_text("Comparing 2 runs")
    expect(page.locator("h2", has_text="Configuration diff")).to_be_visible()
    shot(page, "6-compare")
    assert not errors, errors
    assert not away, away


def start_simulation(page: Page, base: str, rate: str, duration: str) -> None:
    page.goto(base + "/simulate")
    page.fill("#f-rate", rate)
    page.fill("#f-duration", duration)
    page.click("#start")
    expect(page.locator("#job")).to_be_visible()


def test_two_browsers_a_reload_and_a_cancel_lose_no_job(browser: Browser, server: str, registry_copy: Path) -> None:
    """Two browsers start jobs at once; one reloads mid-job and cancels; the other's finishes and is recorded."""
    first, second = browser.new_context().new_page(), browser.new_context().new_page()
    start_simulation(first, server, "40", "3600")  # long: it is cancelled below
    start_simulation(second, server, "2", "15")
    expect(first.locator("#job-state")).to_have_text("running", timeout=60_000)
    expect(first.locator("#job-message")).to_contain_text("arrivals", timeout=60_000)  # under way
    first.reload()  # the job is the server's: the page finds it again and listens on
    expect(first.locator("#job-state")).to_have_text("running")
    first.click("#cancel")
    expect(first.locator("#job-state")).to_have_text("cancelled", timeout=60_000)
    expect(second.locator("#job-state")).to_have_text("done", timeout=180_000)
    shot(second, "7-second-browser-done")
    first.goto(server + "/jobs")
    expect(first.locator("#jobs")).to_contain_text("cancelled")
    expect(first.locator("#jobs")).to_contain_text("done")
    shot(first, "8-jobs")
    sims = run_ids(registry_copy, "sim")
    assert len(sims) == 3  # noqa: PLR2004  (two seeded, the finished one; the cancelled one recorded nothing)
