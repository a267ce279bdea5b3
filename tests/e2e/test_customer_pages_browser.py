"""The customer pages in a real browser: Debian's Chromium, headless,
driven by Selenium through Debian's chromedriver, against ``calpool run``
on loopback with its calendars on Radicale.

The walk: open a one-time link, pick a slot, book, land on the manage
page, reschedule, cancel, open the link again and see it used — with
JavaScript on (the page reloads itself in the browser's zone) and off (the
zone picker is a plain form).  Two browsers racing for one link: one
booking, the other sees "already booked".

Screenshots at 1280×800 and 390×844 go to ``artifacts/screenshots/``
(git-ignored; ``CALPOOL_SCREENSHOTS`` names another folder).  Without
chromium, chromium-driver or selenium the tests skip, naming them; under
``CI=true`` they fail instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CALPOOL, environment
from tests.support import sites
from tests.support.caldav_servers import free_port, start_radicale

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ADMIN = "browser-test-admin-token"
SIZES = ((1280, 800), (390, 844))
SCREENSHOTS = Path(os.environ.get("CALPOOL_SCREENSHOTS") or
                   Path(__file__).resolve().parents[2] / "artifacts" / "screenshots")
WAIT = 20.0
# axe-core from the npm registry, for the test browser only (never served by
# calpool): `npm install --no-save --prefix tests/e2e/.npm axe-core@4` (.ci/run does).
AXE = Path(os.environ.get("AXE_CORE_JS") or
           Path(__file__).parent / ".npm" / "node_modules" / "axe-core" / "axe.min.js")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def _missing() -> list[str]:
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER))
               if not Path(path).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    return missing


@pytest.fixture(scope="module", autouse=True)
def browser_available() -> None:
    missing = _missing()
    if missing:
        why = ("the browser tests need " + ", ".join(missing) +
               " (apt-get install chromium chromium-driver; pip install selenium)")
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


# ---- the daemon ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("browser-site")
    server = start_radicale(folder / "radicale")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for name in ("alice", "room-a", "room-b"):
        server.make_calendar(name)
    text = f"""\
[daemon]
database = "sqlite:///calpool.db"

[http]
listen = "127.0.0.1:{port}"

[[api.tokens]]
name = "ops"
sha256 = "{hashlib.sha256(ADMIN.encode()).hexdigest()}"
scopes = ["admin", "book", "slots"]

[accounts.dav]
provider = "caldav"
url = "{server.home}"

[calendars.alice]
account = "dav"
id = "alice/"
kind = "person"
name = "Alice Owner"
timezone = "Europe/Berlin"

[calendars.room-a]
account = "dav"
id = "room-a/"
kind = "room"
name = "Room A"

[calendars.room-b]
account = "dav"
id = "room-b/"
kind = "room"
name = "Room B"

[pools.rooms]
members = ["room-a", "room-b"]
assignment = "priority"

[event_types.consult]
title = "Consultation with {{attendee_name}}"
duration = "30m"
owner = "alice"
pools = ["rooms"]
min_notice = "1h"
public = true
"""
    config = sites.write_config(folder, text)
    upgraded = subprocess.run([str(CALPOOL), "--config", str(config), "db", "upgrade"],
                              capture_output=True, text=True, env=environment(), timeout=60)
    assert upgraded.returncode == 0, upgraded.stderr
    log = folder / "daemon.log"
    with log.open("ab") as out:
        process = subprocess.Popen([str(CALPOOL), "--config", str(config), "run"],
                                   stdout=out, stderr=subprocess.STDOUT, env=environment())
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        server.stop()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def new_link(url: str) -> str:
    response = httpx.post(f"{url}/v1/links", json={"event_type": "consult"}, trust_env=False,
                          headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


# ---- the browser --------------------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    started: list[Any] = []

    def start(*, javascript: bool = True, zone: str = "America/New_York") -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        profile = tmp_path / f"profile-{len(started)}"
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                     "--window-size=1280,800"):
            options.add_argument(flag)
        if not javascript:
            options.add_experimental_option(
                "prefs", {"profile.managed_default_content_settings.javascript": 2})
        service = Service(CHROMEDRIVER, env={**os.environ, "TZ": zone})
        driver = webdriver.Chrome(options=options, service=service)
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(30)
        driver.calpool_javascript = javascript
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.quit()


def shoot(driver: Any, name: str) -> None:
    """Screenshots of the page as it is, at both sizes, each checked by axe."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        driver.set_window_size(width, height)
        time.sleep(0.2)
        driver.save_screenshot(str(SCREENSHOTS / f"{name}-{width}x{height}.png"))
        assert_accessible(driver, f"{name} at {width}x{height}")
    driver.set_window_size(*SIZES[0])


def assert_accessible(driver: Any, where: str) -> None:
    """axe-core finds no WCAG A/AA violation on the page.  Without axe-core
    the check is left out (named in the log), under CI=true it fails.  A
    browser with JavaScript off cannot run axe: the same templates are
    checked in the walk with JavaScript on."""
    if not getattr(driver, "calpool_javascript", True):
        return
    if not AXE.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"axe-core is missing at {AXE}: npm install --no-save --prefix "
                        "tests/e2e/.npm axe-core@4")
        print(f"axe-core not installed at {AXE}: accessibility not checked")
        return
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(r => done(r.violations.map(v => [v.id, v.impact, v.help,"
        " v.nodes.map(n => n.target.join(' '))])))"
        ".catch(e => done([['axe-failed', String(e)]]));", AXE_TAGS)
    assert violations == [], f"{where}: {violations}"


def wait_for(driver: Any, what: Callable[[], bool], why: str) -> None:
    deadline = time.monotonic() + WAIT
    while not what():
        assert time.monotonic() < deadline, f"{why}: {driver.current_url}\n{text(driver)}"
        time.sleep(0.1)


def text(driver: Any) -> str:
    """The page's text ("" while it is being replaced, e.g. by its meta refresh)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.TAG_NAME, "body").text)
    except (StaleElementReferenceException, NoSuchElementException):
        return ""


def radios(driver: Any, form: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, f"form.{form} input[type=radio]"))


def fill_and_pick(driver: Any, slot: int = 0) -> str:
    """Pick the ``slot``-th time and fill name and email; the picked value."""
    from selenium.webdriver.common.by import By

    choice = radios(driver, "book")[slot]
    value = choice.get_attribute("value")
    driver.find_element(By.CSS_SELECTOR, f"label:has(input[value='{value}'])").click()
    assert choice.is_selected()
    driver.find_element(By.ID, "name").send_keys("Ann Browser")
    driver.find_element(By.ID, "email").send_keys("ann@example.com")
    return str(value)


def submit(driver: Any, form: str) -> None:
    """Submit ``form`` and wait until the browser has left the page."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, f"form.{form} button[type=submit]").click()
    # Chromium may answer the staleness probe of a node being torn down with
    # "Node with given id does not belong to the document" (an unknown error,
    # not a stale element): ask again, the next probe sees it gone.
    WebDriverWait(driver, WAIT, ignored_exceptions=(WebDriverException,)).until(
        expected_conditions.staleness_of(old))


def walk(driver: Any, url: str, name: str, *, javascript: bool) -> None:
    from selenium.webdriver.common.by import By

    token = new_link(url)
    driver.get(f"{url}/book/{token}")
    if javascript:  # the script reloads the page in the browser's zone
        wait_for(driver, lambda: "timezone=America" in driver.current_url, "no zone reload")
        assert "-04:00" in radios(driver, "book")[0].get_attribute("value") or \
            "-05:00" in radios(driver, "book")[0].get_attribute("value")
    else:
        assert "timezone=" not in driver.current_url
        assert "+01:00" in radios(driver, "book")[0].get_attribute("value") or \
            "+02:00" in radios(driver, "book")[0].get_attribute("value")
        # The zone picker without script: choose, then "Show".
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element(By.ID, "timezone")).select_by_value("Asia/Tokyo")
        submit(driver, "zone")
        wait_for(driver, lambda: "timezone=Asia" in driver.current_url, "no zone form")
        assert radios(driver, "book")[0].get_attribute("value").endswith("+09:00")
    assert "Consultation with you" in text(driver)
    shoot(driver, f"{name}-booking")

    picked = fill_and_pick(driver)
    submit(driver, "book")
    wait_for(driver, lambda: "/manage/" in driver.current_url, "no manage page")
    wait_for(driver, lambda: "Your booking is confirmed." in text(driver), "not confirmed")
    assert "Room A" in text(driver) and "Alice Owner" in text(driver)
    shoot(driver, f"{name}-manage")

    later = [r for r in radios(driver, "reschedule") if r.get_attribute("value") != picked][2]
    moved_to = later.get_attribute("value")
    driver.find_element(
        By.CSS_SELECTOR, f"form.reschedule label:has(input[value='{moved_to}'])").click()
    submit(driver, "reschedule")
    wait_for(driver, lambda: "Your booking is confirmed." in text(driver), "not moved")
    assert f"{int(moved_to[11:13]):02d}:{moved_to[14:16]}" in text(driver).split("When")[1]

    submit(driver, "cancel")
    wait_for(driver, lambda: "This booking is cancelled." in text(driver), "not cancelled")
    shoot(driver, f"{name}-cancelled")

    driver.get(f"{url}/book/{token}")
    wait_for(driver, lambda: "already booked" in text(driver), "link not used")
    # This browser booked: it is shown its manage page.
    assert driver.find_element(By.LINK_TEXT, "See or change your booking")
    shoot(driver, f"{name}-used")


def test_walk_with_javascript(daemon: str, browser: Callable[..., Any]) -> None:
    walk(browser(javascript=True), daemon, "js", javascript=True)


def test_walk_without_javascript(daemon: str, browser: Callable[..., Any]) -> None:
    walk(browser(javascript=False), daemon, "nojs", javascript=False)


def test_two_browsers_racing_for_one_link_make_one_booking(
        daemon: str, browser: Callable[..., Any]) -> None:
    token = new_link(daemon)
    drivers = [browser(), browser()]
    for driver in drivers:
        driver.get(f"{daemon}/book/{token}?timezone=Europe/Berlin")
        # Failed once in CI with fewer radios than that: the page it had is
        # in the message if it happens again.
        wait_for(driver, lambda d=driver: len(radios(d, "book")) > 5, "fewer than 6 slots")
        fill_and_pick(driver, slot=5)
    threads = [threading.Thread(target=submit, args=(driver, "book")) for driver in drivers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for driver in drivers:
        wait_for(driver, lambda d=driver: "/manage/" in d.current_url
                 or "already booked" in text(d), "no answer")
    outcomes = sorted("manage" if "/manage/" in d.current_url else "used" for d in drivers)
    assert outcomes == ["manage", "used"]
    loser = next(d for d in drivers if "/manage/" not in d.current_url)
    assert "already booked" in text(loser)
    shoot(loser, "race-loser")
    listed = httpx.get(f"{daemon}/v1/links", headers={"Authorization": f"Bearer {ADMIN}"},
                       trust_env=False, timeout=30).json()["links"]
    assert hashlib.sha256(token.encode()).hexdigest() not in [link["id"] for link in listed]


def test_every_control_of_the_booking_page_is_reachable_by_keyboard(
        daemon: str, browser: Callable[..., Any]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver = browser()
    driver.get(f"{daemon}/book/{new_link(daemon)}?timezone=Europe/Berlin")
    reached: list[str] = []
    for _ in range(30):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        reached.append(driver.execute_script(
            "const e = document.activeElement;"
            "return e.tagName.toLowerCase() + ':' + (e.name || e.id || e.textContent.trim());"))
    assert {"select:timezone", "button:Show", "a:Later →", "input:start", "input:name",
            "input:email", "textarea:notes", "button:Book"} <= set(reached), reached
    assert "input:website" not in reached  # the honeypot is not on link pages at all
    # A slot is chosen with the keyboard too: the focused radio, then space.
    for _ in range(30):
        if driver.execute_script("return document.activeElement.name") == "start":
            break
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    ActionChains(driver).send_keys(Keys.SPACE).perform()
    assert driver.execute_script("return document.activeElement.checked") is True


def test_error_pages_are_accessible_too(daemon: str, browser: Callable[..., Any]) -> None:
    from selenium.webdriver.common.by import By

    driver = browser()
    driver.get(f"{daemon}/book/no-such-link")
    assert "Page not found" in text(driver)
    shoot(driver, "not-found")

    revoked = new_link(daemon)
    httpx.delete(f"{daemon}/v1/links/{revoked}", headers={"Authorization": f"Bearer {ADMIN}"},
                 trust_env=False, timeout=30)
    driver.get(f"{daemon}/book/{revoked}")
    assert "can no longer be used" in text(driver)
    shoot(driver, "revoked")

    # A 422 page: the browser's own checks switched off, the form sent without a name.
    driver.get(f"{daemon}/book/{new_link(daemon)}?timezone=Europe/Berlin")
    driver.execute_script("document.querySelector('form.book').noValidate = true;")
    driver.find_element(By.CSS_SELECTOR, "form.book label.choice").click()
    driver.find_element(By.ID, "email").send_keys("not-an-address")
    submit(driver, "book")
    assert "Enter your name." in text(driver) and "Enter an email address" in text(driver)
    assert driver.find_element(By.ID, "email").get_attribute("value") == "not-an-address"
    shoot(driver, "invalid")
