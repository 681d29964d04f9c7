"""The runner's pages in a real browser: Debian's Chromium, driven by Playwright, against `backstride serve`
and the sandbox host over loopback. Takes the screenshots docs/ uses: into docs/screenshots/ when
UPDATE_SCREENSHOTS=1, else into a temporary directory, so that a test run changes no file of the project."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from plugin.sandbox.stack import Stack
from plugin.sandbox.state import SandboxConfig
from tests.system_packages import require_program

playwright_api = pytest.importorskip("playwright.sync_api")

SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "backstride-screenshots"
)
# Chromium as root in a container, on a machine with no outside network: no sandbox, no background fetches.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def chromium():
    executable = require_program("chromium", "chromium")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def stack():
    with Stack(SandboxConfig(seed=True, delivery_retry_s=0.2)) as running:
        running.subscribe()
        yield running


@pytest.fixture
def page(chromium):
    # A phone-sized window first: the pages are mobile-first. axe injects its script, hence bypass_csp.
    context = chromium.new_context(viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def accessibility_violations(page) -> list[str]:
    """axe-core's serious and critical findings (WCAG 2 A/AA rules, contrast included)."""
    from axe_playwright_python.sync_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
    results = Axe().run(page, options=options).response
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def connect_through_consent(page, stack, shot: bool = False) -> None:
    page.goto(stack.plugin_url + "/")
    page.get_by_role("link", name="Connect with Strava").click()
    page.wait_for_url("**/oauth/authorize**")
    assert page.get_by_role("heading", name="Authorize Backstride to connect to your account").is_visible()
    if shot:
        screenshot(page, "consent")
    page.get_by_role("button", name="Authorize").click()
    page.get_by_role("heading", name="You're connected").wait_for()


def test_landing_page_in_a_phone_sized_window(page, stack):
    page.goto(stack.plugin_url + "/")
    assert page.get_by_role("heading", name="Honest notes for your backward runs").is_visible()
    button = page.get_by_role("link", name="Connect with Strava")
    box = button.locator("img").bounding_box()
    assert box is not None and box["height"] == 48  # the brand guidelines' button height
    assert button.get_attribute("href") == "/connect"
    assert "⟲ Backstride: 3 backward efforts" in page.locator("pre.note").inner_text()
    assert page.get_by_text("Powered by Strava").is_visible()
    assert page.get_by_role("link", name="Privacy").is_visible()
    assert page.get_by_role("link", name="Support").is_visible()
    assert no_horizontal_scroll(page)
    assert accessibility_violations(page) == []
    screenshot(page, "landing")


def test_connect_change_settings_see_an_error_and_disconnect(page, stack):
    connect_through_consent(page, stack, shot=True)
    # An activity arrives and gets its note: the settings page lists it with a link to the host.
    uploaded = stack.upload(seed="retro-intervals")
    stack.wait_settled()

    page.get_by_role("link", name="Your settings").click()
    page.get_by_role("heading", name="Your settings").wait_for()
    weight = page.get_by_label("Body weight")
    weight.fill("sixty")
    page.get_by_role("button", name="Save settings").click()
    page.get_by_role("heading", name="Nothing was saved").wait_for()
    error = page.locator("#weight-error")
    assert "Enter your weight as a number" in error.inner_text()
    assert weight.get_attribute("aria-invalid") == "true"
    assert "weight-error" in (weight.get_attribute("aria-describedby") or "")
    assert weight.input_value() == "sixty"  # what was typed stays, to be corrected
    screenshot(page, "settings-error")

    page.get_by_label("Body weight").fill("143")
    page.get_by_label("Weight unit").select_option("lb")
    page.get_by_label("Imperial (miles, lb)").check()
    page.get_by_label("Compact: what was backward, energy and the myth answered").check()
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Settings saved.").wait_for()
    assert page.get_by_label("Body weight").input_value() == "143"
    assert page.get_by_label("Imperial (miles, lb)").is_checked()
    assert no_horizontal_scroll(page)
    assert accessibility_violations(page) == []

    link = page.get_by_role("link", name="View on Strava")
    assert link.count() == 1
    assert link.get_attribute("href") == stack.sandbox_url(f"/activities/{uploaded['id']}")
    screenshot(page, "settings")

    # A title change re-runs the note with the new settings: miles and the compact style.
    stack.control("PATCH", f"/activities/{uploaded['id']}", json={"name": "Tempo with #retro intervals!"})
    stack.wait_settled()
    description = stack.activity(uploaded["id"])["description"]
    assert " mi in " in description and "Kneecap" not in description

    page.get_by_role("button", name="Disconnect and delete my data").click()
    page.get_by_role("heading", name="Disconnected and deleted").wait_for()
    assert page.get_by_text("access to your Strava account has been revoked").is_visible()
    state = stack.control("GET", "/state").json()
    assert state["demo_athlete_id"] not in state["authorized"]
    page.goto(stack.plugin_url + "/settings")
    assert page.get_by_role("heading", name="Please connect first").is_visible()


def test_settings_work_from_the_keyboard_alone(page, stack):
    connect_through_consent(page, stack)
    page.goto(stack.plugin_url + "/settings")
    page.get_by_label("Body weight").focus()
    page.keyboard.type("61")
    # Tab through to the "Pause notes" checkbox and tick it with the space bar, then submit with Enter.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "paused":
            break
    else:
        pytest.fail("the pause checkbox cannot be reached with Tab")
    page.keyboard.press("Space")
    page.keyboard.press("Shift+Tab")
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Save settings":
            break
    page.keyboard.press("Enter")
    page.get_by_text("Settings saved.").wait_for()
    assert page.get_by_label("Body weight").input_value() == "61"
    assert page.get_by_text("Notes are paused").is_visible()


def test_a_cancelled_consent_explains_and_stores_nothing(page, stack):
    page.goto(stack.plugin_url + "/")
    page.get_by_role("link", name="Connect with Strava").click()
    page.get_by_role("button", name="Cancel").click()
    assert page.get_by_role("heading", name="Not connected").is_visible()
    assert page.get_by_role("link", name="Connect with Strava again").is_visible()
    page.goto(stack.plugin_url + "/settings")
    assert page.get_by_role("heading", name="Please connect first").is_visible()
