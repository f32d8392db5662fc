"""The Airflow UI, in a real headless Chromium, on this provider's connections and task instances.

Debian's ``chromium`` driven by Playwright (its Python package, with the system browser: no browser download).
The Lytics and PGP connection forms show their own labels, the Test button succeeds for a good ``lytics``
connection and explains a bad token, and the extra links of this provider's task instances point where they say.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.deployment

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: As the machine notes advise: no background networking (the network is closed), no sandbox as root.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]  # fmt: skip


@pytest.fixture(scope="module")
def page(world) -> Iterator[object]:
    if not shutil.which("chromium"):
        pytest.skip("no chromium on PATH (apt install chromium; .ci/run installs it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(90_000)
            page.goto(f"{world.airflow.base_url}/auth/login?next=/connections")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", world.airflow.password)
            page.click("button[type=submit]")
            page.locator("tr", has_text="lytics_default").wait_for()
            yield page
        finally:
            browser.close()


def _open_connection_form(page, world, conn_id: str) -> None:
    page.goto(f"{world.airflow.base_url}/connections")
    page.locator("tr", has_text=conn_id).get_by_role("button", name="Edit Connection").click()
    page.get_by_text("Edit Connection").first.wait_for()
    page.get_by_text("Extra Fields", exact=True).click()


def _labels(page) -> list[str]:
    return [t.strip() for t in page.locator("[role=dialog] label").all_inner_texts() if t.strip()]


def test_lytics_connection_form_shows_its_fields_and_labels(page, world):
    _open_connection_form(page, world, "lytics_default")
    page.get_by_text("Bulk upload URL").wait_for()
    labels = _labels(page)
    # Airflow 3.3's edit dialog lists the declared extra fields that hold a value (the sandbox sets bulk_url).
    for label in ("API base URL", "API token", "API port", "Bulk upload URL"):
        assert label in labels, " | ".join(labels)
    assert "Login" not in labels and "Schema" not in labels, labels


def test_pgp_connection_form_shows_key_fields_and_one_passphrase(page, world):
    _open_connection_form(page, world, "lytics_pgp")
    page.get_by_text("Public key (encrypt)").wait_for()
    labels = _labels(page)
    for label in ("Public key (encrypt)", "Private key (decrypt)"):
        assert label in labels, " | ".join(labels)
    assert sum("passphrase" in label.lower() and "signing" not in label.lower() for label in labels) == 1, labels


def _click_test(page, world, conn_id: str) -> tuple[int, dict, str]:
    """Click the row's Test button; returns the API answer the UI got and the colour the button turned."""
    page.goto(f"{world.airflow.base_url}/connections")
    button = page.locator("tr", has_text=conn_id).get_by_role("button", name="Test Connection")
    with page.expect_response(lambda r: r.url.endswith("/connections/test")) as answer:
        button.click()
    response = answer.value
    colour = button.locator("svg").get_attribute("color") or ""
    return response.status, response.json(), colour


def test_test_button_succeeds_for_a_good_lytics_connection(page, world):
    status, body, colour = _click_test(page, world, "lytics_default")
    assert status == 200 and body["status"] is True, body
    assert colour == "green"


def test_test_button_explains_a_bad_token(page, world):
    spec = dict(world.sandbox.connections()["lytics_default"], password="not-the-token")
    world.airflow.create_connection("lytics_bad_token", spec)
    status, body, colour = _click_test(page, world, "lytics_bad_token")
    assert status == 200 and body["status"] is False, body
    message = body["message"]
    assert "token" in message.lower() and "not-the-token" not in message, message
    assert world.sandbox.lytics.url in message, message  # names the URL it tried
    assert colour == "red"


def test_extra_links_on_provider_task_instances_point_at_the_lytics_objects(page, world):
    """A successful job-as-code run's job tasks link to their Lytics job, in the API and on the task page."""
    airflow = world.airflow
    runs = airflow.api("GET", "/dags/lytics_job_as_code/dagRuns", params={"state": "success", "limit": 5})["dag_runs"]
    assert runs, "no successful lytics_job_as_code run to inspect (see test_2_rest_triggered)"
    run_id = runs[0]["dag_run_id"]
    links = airflow.api("GET", f"/dags/lytics_job_as_code/dagRuns/{run_id}/taskInstances/run_export/links")
    urls = {name: url for name, url in links["extra_links"].items() if url}
    assert urls, links
    job_id = airflow.xcom("lytics_job_as_code", run_id, "sync_export_job")
    job_id = job_id["id"] if isinstance(job_id, dict) else job_id
    assert any(str(job_id) in url for url in urls.values()), (job_id, urls)

    page.goto(f"{airflow.base_url}/dags/lytics_job_as_code/runs/{run_id}/tasks/run_export")
    for url in urls.values():
        page.locator(f'a[href="{url}"]').first.wait_for()  # the UI renders each extra link as a link to its URL
