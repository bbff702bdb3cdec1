"""The failed-tasks admin in a real browser: headless Chromium driven by Selenium.

Needs Debian's chromium and chromium-driver (or CHROME_BINARY and CHROMEDRIVER); the
test is skipped without them, unless REQUIRE_BROWSER=1 makes that a failure. It saves
a screenshot in SCREENSHOT_DIR (default: the test's temporary directory).
"""

import os
import shutil
from pathlib import Path

import pytest
from django_q.conf import Conf
from django_q.humanhash import DEFAULT_WORDLIST
from django_q.models import Failure
from django_q.tasks import async_task

from .processes import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A common laptop width: the failed-tasks list fits it, navigation sidebar open.
WIDTH = 1280
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    f"--window-size={WIDTH},720",
)


def find_chromium():
    """(browser binary, chromedriver) paths, or Nones."""
    names = ("chromium", "chromium-browser", "google-chrome")
    binary = os.environ.get("CHROME_BINARY") or next(filter(None, map(shutil.which, names)), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if driver and not Path(driver).is_file():
        driver = None
    return binary, driver


def missing(reason):
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; REQUIRE_BROWSER=1 requires it")
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path):
    binary, driver_path = find_chromium()
    if not (binary and driver_path):
        missing("no Chromium and chromedriver (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
    except ImportError:
        missing("selenium is not installed (pip install -e . --group dev)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_failed_task_shows_name_duration_attempts_error_and_resubmit(
    live_server, admin_user, browser, start_cluster, tmp_path, monkeypatch
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setattr(Conf, "MAX_ATTEMPTS", 1)  # the admin's policy is the cluster's
    cluster = start_cluster(DJANGO_Q_MAX_ATTEMPTS="1")
    # The widest name django-q2 can give a task: its four longest words.
    name = "-".join(sorted(DEFAULT_WORDLIST, key=len)[-4:])
    failing = "{{ cookiecutter.app_name }}.tasks.fail_on_purpose"
    task_id = async_task(failing, "disk full", task_name=name)
    assert wait_for(lambda: Failure.objects.filter(id=task_id).exists(), 30), cluster.log()

    browser.get(f"{live_server.url}/admin/login/?next=/admin/django_q/failure/")
    browser.find_element(By.NAME, "username").send_keys(admin_user.username)
    browser.find_element(By.NAME, "password").send_keys("password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 15).until(
        expected_conditions.presence_of_element_located((By.ID, "result_list"))
    )

    headers = [th.text.lower() for th in browser.find_elements(By.CSS_SELECTOR, "#result_list th")]
    for heading in ("name", "seconds", "attempts", "error"):
        assert heading in headers
    row = browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr")
    assert row.find_element(By.CSS_SELECTOR, ".field-name").text == name
    assert float(row.find_element(By.CSS_SELECTOR, ".field-time_taken").text) >= 0
    assert row.find_element(By.CSS_SELECTOR, ".field-attempts").text == "1 of 1"
    error = row.find_element(By.CSS_SELECTOR, ".field-short_result").text
    assert error == "{{ cookiecutter.app_name }}.tasks.DeliberateFailure: disk full"
    actions = browser.find_elements(By.CSS_SELECTOR, "select[name=action] option")
    assert "resubmit_task" in [option.get_attribute("value") for option in actions]

    # Every column is visible: neither the page nor the list scrolls sideways.
    widths = browser.execute_script(
        "const page = document.documentElement, list = document.querySelector('.results');"
        "return [page.scrollWidth, page.clientWidth, list.scrollWidth, list.clientWidth];"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[3], widths
    assert browser.get_window_size()["width"] == WIDTH
    screenshot_dir = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    screenshot_dir.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot_dir / "admin-failed-tasks.png"))
