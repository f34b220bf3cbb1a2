"""End to end in a real browser (Debian's chromium, driven by Playwright): log in, connect nothing, search ZTF
history on BigQuery through the DataService pages, select results, create Targets, open a Target and see its
light curve. A screenshot of each step goes to ``$PITTGOOGLE_SCREENSHOTS`` (``make screenshots``: docs/screenshots,
shown in the README), else to the test's temporary folder.

The TOM's pages load Bootstrap and Alpine.js from CDNs, which this machine cannot reach: they render unstyled, and
every tab pane shows at once. The light-curve plot's plotly.js is inlined by TOM Toolkit, so the plot draws; the
status page loads it once from this TOM (``tom_pittgoogle:plotly-js``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser_page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(60_000)
        # Nothing off this machine: CDN requests fail at once instead of waiting for a timeout.
        host = live_server.url.split("//", 1)[1]
        page.route("**/*", lambda route: route.continue_() if host in route.request.url else route.abort())
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("PITTGOOGLE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshotter(page, screenshots: Path):
    """shot(name, element=None, full_page=True): a screenshot of the page (or of one element) into the folder."""

    def shot(name: str, element=None, full_page: bool = True) -> None:
        path = screenshots / f"{name}.png"
        if element is not None:
            element.screenshot(path=str(path))
        else:
            page.screenshot(path=str(path), full_page=full_page)
        assert path.stat().st_size > 0

    return shot


def log_in(page, live_server, shot=None) -> None:
    """Log in as the test's astronomer (no Google account connected: the emulators need none)."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill('input[name="login"]', "astronomer")
    page.fill('input[name="password"]', "stars-at-night")
    if shot is not None:
        shot("01-login")
    page.locator('form button[type="submit"], form input[type="submit"]').first.click()
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url


@pytest.mark.django_db(transaction=True)
def test_search_ztf_history_create_targets_and_see_the_light_curve_in_a_browser(
    browser_page, live_server, ztf_table, django_user_model, screenshots
):
    page = browser_page
    record = ztf_table[-1]
    django_user_model.objects.create_user("astronomer", password="stars-at-night")
    shot = screenshotter(page, screenshots)

    # 1. Log in.
    log_in(page, live_server, shot)

    # 2. The navigation bar's Data Services menu offers Pitt-Google (a menu: styled pages show it when opened).
    page.goto(f"{live_server.url}/")
    page.locator("a.dropdown-toggle", has_text="Data Services").click()
    pittgoogle = page.locator(".dropdown-menu.show").get_by_role("link", name="Pitt-Google", exact=True)
    pittgoogle.wait_for(state="visible")
    shot("02-data-services")
    pittgoogle.click()
    page.wait_for_load_state()
    assert "data_service=Pitt-Google" in page.url

    # 3. ZTF history on BigQuery: the object's alerts.
    page.select_option("#id_survey", "ztf")
    page.check('input[name="route"][value="bigquery"]')
    page.fill("#id_objectId", record["objectId"])
    page.fill("#id_max_results", "10")
    shot("03-query-form")
    page.click("#submit-id-submit")
    page.wait_for_load_state()

    # 4. The results: one row per alert; select the newest, create its Target.
    table = page.locator("#pittgoogle-results")
    rows = table.locator("tbody tr")
    assert rows.count() >= 1
    assert record["objectId"] in table.inner_text()
    shot("04-results")
    rows.first.locator('input[name="selected_results"]').check()
    page.get_by_role("button", name="Create Targets").or_(page.locator('input[value="Create Targets"]')).click()
    page.wait_for_load_state()

    # 5. The Target's page: its light curve, drawn from the stored photometry.
    target = Target.objects.get(name=record["objectId"])
    stored = PhotometryReducedDatum.objects.filter(target=target).count()
    assert stored > 1
    assert page.url.rstrip("/").endswith(f"/targets/{target.pk}") or f"/targets/{target.pk}/" in page.url
    # The Target's names, coordinates, extras and latest photometry (the unstyled nav above them is left out).
    page.get_by_text("Names", exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    shot("05-target", full_page=False)
    page.goto(f"{live_server.url}/targets/{target.pk}/?tab=photometry")
    plot = page.locator(".light-curve .js-plotly-plot").first
    plot.wait_for()
    points = plot.locator(".scatterlayer path.point")
    points.first.wait_for()
    assert points.count() >= stored
    plot.scroll_into_view_if_needed()
    shot("06-light-curve", element=page.locator("#photometry"))


@pytest.mark.django_db(transaction=True)
def test_the_nights_stored_alerts_become_targets_and_the_status_page_shows_a_dead_ingester(
    browser_page, live_server, topic_name, publish, packets, django_user_model, screenshots, settings
):
    import io
    import signal

    from django.core.management import call_command
    from django.urls import reverse

    from tom_pittgoogle.core.heartbeat import ingester_status
    from tom_pittgoogle.models import IngesterHeartbeat
    from tom_pittgoogle.views import plotly_js_version

    from .test_latency_status import night_started
    from .test_stream_ingester import MALFORMED, Ingester, subscribe, wait_until

    settings.PITTGOOGLE_HEARTBEAT_LATE_SECONDS = 3
    settings.PITTGOOGLE_NIGHT_STARTS_AT = night_started(hours_ago=1)  # whatever the time of day the test runs
    page = browser_page
    django_user_model.objects.create_user("astronomer", password="stars-at-night")
    shot = screenshotter(page, screenshots)
    # The night: an ingester stores the alerts and records the malformed messages; a second one is killed -9.
    subscribe(topic_name)
    publish(topic_name, packets)
    publish(topic_name, [data for data, _ in MALFORMED], origin="test")
    call_command("pittgoogle_stream", "--subscription", topic_name, "--timeout", "3", stdout=io.StringIO())
    dead = Ingester("--subscription", topic_name)
    dead.send(signal.SIGKILL)
    dead.finish()

    log_in(page, live_server)
    # 7. The stored route: the brightest alerts, a page of 5.
    page.goto(f"{live_server.url}{reverse('dataservices:create')}?data_service=Pitt-Google")
    page.check('input[name="route"][value="stored"]')
    page.select_option("#id_sort", "brightest")
    page.fill("#id_max_results", "5")
    shot("07-stored-query")
    page.click("#submit-id-submit")
    page.wait_for_load_state()
    pager = page.locator("#pittgoogle-stored-pager")
    assert f"Alerts 1 to 5 of {len(packets)} stored" in " ".join(pager.inner_text().split())
    page.click("#pittgoogle-next-page")
    page.wait_for_load_state()
    second_page = f"Alerts 6 to {min(10, len(packets))} of {len(packets)} stored"
    assert second_page in " ".join(page.locator("#pittgoogle-stored-pager").inner_text().split())
    shot("08-stored-results")
    rows = page.locator("#pittgoogle-results tbody tr")
    name = rows.first.locator("td").nth(1).inner_text().strip()
    rows.first.locator('input[name="selected_results"]').check()
    page.locator('input[value="Create Targets"]').click()
    page.wait_for_load_state()
    target = Target.objects.get(name=name)
    assert PhotometryReducedDatum.objects.filter(target=target).count() > 1

    # 9. The status page: the finished run, the dead one marked late, the rejected messages' reasons.
    assert wait_until(lambda: ingester_status().late, timeout=30)
    page.goto(f"{live_server.url}{reverse('tom_pittgoogle:status')}")
    ingesters = page.locator("#pittgoogle-ingesters").inner_text()
    assert "LATE" in ingesters and "stopped" in ingesters and topic_name in ingesters
    assert page.locator("#pittgoogle-rejected tbody tr").count() == len(MALFORMED)
    # plotly.js came from this TOM, once; the plots are drawn (plotly's SVG in each), and the alerts-per-minute plot
    # adds up to the night's alerts.
    scripts = page.evaluate("() => [...document.scripts].map(script => script.src).filter(src => /plotly/.test(src))")
    assert scripts == [f"{live_server.url}{reverse('tom_pittgoogle:plotly-js', args=[plotly_js_version()])}"]
    for plot in ("pittgoogle-plot-alerts", "pittgoogle-plot-tom-p95", "pittgoogle-plot-backlog"):
        page.wait_for_selector(f"#{plot} .main-svg", state="attached")
    drawn = page.evaluate("id => document.getElementById(id).data.map(trace => trace.y.reduce((a, b) => a + b, 0))",
                          "pittgoogle-plot-alerts")
    assert sum(drawn) == len(packets)
    p95 = page.evaluate("id => document.getElementById(id).data.flatMap(trace => trace.y)", "pittgoogle-plot-tom-p95")
    assert p95 and all(value > 0 for value in p95)
    # The backlog over the night: a line for the run that finished (its last heartbeat wrote a sample).
    finished = IngesterHeartbeat.objects.exclude(pid=dead.process.pid).get()
    backlog = dict(page.evaluate("id => document.getElementById(id).data.map(trace => [trace.name, trace.y])",
                                 "pittgoogle-plot-backlog"))
    drawn = backlog[f"{finished.host} pid {finished.pid} (stopped)"]
    assert drawn and drawn[-1] == 0  # it stopped with nothing left to store
    latency = page.locator(".pittgoogle-latency").first.inner_text()
    assert topic_name in latency
    shot("09-status")


XSS = "</script><script>alert(1)</script>"


@pytest.mark.django_db(transaction=True)
def test_an_alert_named_like_a_script_never_runs_in_the_browser_and_is_recorded_as_rejected(
    browser_page, live_server, topic_name, publish, django_user_model, screenshots
):
    """Issue 11's stored XSS: an objectId that is a script would become a Target name, which TOM Toolkit's
    Targets page puts raw into an inline script. It is refused at decoding (recorded, with its reason); the pages
    that show the pull's results, the Targets and the rejected messages run no script."""
    from django.urls import reverse

    from tom_pittgoogle.demo.sample_alerts import make_alerts, serialize_alert
    from tom_pittgoogle.models import Alert, RejectedMessage
    from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    django_user_model.objects.create_user("astronomer", password="stars-at-night")
    shot = screenshotter(page, screenshots)
    good, hostile = make_alerts(2, seed=21)
    hostile["objectId"] = XSS
    ConsumerStreamRest(topic_name)  # the subscription exists before the alerts are published
    publish(topic_name, [serialize_alert(hostile), serialize_alert(good)])

    log_in(page, live_server)
    page.goto(f"{live_server.url}{reverse('dataservices:create')}?data_service=Pitt-Google")
    page.check('input[name="route"][value="pubsub"]')
    page.fill("#id_subscription_name", topic_name)
    page.fill("#id_max_results", "2")
    page.fill("#id_timeout", "3")
    page.click("#submit-id-submit")
    page.wait_for_load_state()
    results = page.locator("#pittgoogle-results").inner_text()
    assert good["objectId"] in results and "alert(1)" not in results
    rows = page.locator("#pittgoogle-results tbody tr")
    rows.first.locator('input[name="selected_results"]').check()
    page.locator('input[value="Create Targets"]').click()
    page.wait_for_load_state()
    page.goto(f"{live_server.url}/targets/")
    page.wait_for_load_state()
    assert good["objectId"] in page.content()
    page.goto(f"{live_server.url}{reverse('tom_pittgoogle:status')}")
    rejected = page.locator("#pittgoogle-rejected").inner_text()
    assert "object_id" in rejected
    shot("10-script-named-alert-rejected")

    assert dialogs == []
    assert list(Alert.objects.values_list("object_id", flat=True)) == [good["objectId"]]
    assert not Target.objects.filter(name__contains="script").exists()
    assert "object_id" in RejectedMessage.objects.get().reason


@pytest.mark.django_db(transaction=True)
def test_the_target_pages_pitt_google_tab_lists_its_alerts_and_its_button_fetches_the_history(
    browser_page, live_server, ztf_table, packets, django_user_model, screenshots
):
    from django.urls import reverse

    from tom_pittgoogle.models import AttachedAlert

    from .test_target_attach import settle_night

    page = browser_page
    shot = screenshotter(page, screenshots)
    record = ztf_table[1]
    user = django_user_model.objects.create_user("astronomer", password="stars-at-night")
    target = Target.objects.create(name=record["objectId"], type="SIDEREAL", ra=record["candidate"]["ra"],
                                   dec=record["candidate"]["dec"], permissions=Target.Permissions.PRIVATE)
    target.give_user_access(user)
    settle_night(packets)  # the night's alerts, as a stream route stores them: the object's reach its Target
    attached = AttachedAlert.objects.filter(target=target).count()
    assert attached >= 1

    # 11. The Target's Pitt-Google tab: its alerts, newest first, from the subscription they came from.
    log_in(page, live_server)
    page.goto(f"{live_server.url}{reverse('tom_targets:detail', kwargs={'pk': target.pk})}?tab=pitt-google")
    assert page.locator("#pitt-google-tab").inner_text().strip() == "Pitt-Google"
    tab = page.locator("#pittgoogle-target-alerts")
    rows = tab.locator("tr.pittgoogle-attached-alert")
    assert rows.count() == attached
    assert record["objectId"] in rows.first.inner_text() and "night-alone" in rows.first.inner_text()
    assert f"{attached} alert" in tab.locator("#pittgoogle-target-alerts-count").inner_text()
    tab.scroll_into_view_if_needed()
    shot("11-target-pitt-google-tab", element=tab)

    # 12. Fetch Pitt-Google history: BigQuery's alerts of the object; back on the tab, a message says what came.
    page.get_by_role("button", name="Fetch Pitt-Google history").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/targets/{target.pk}/?tab=pitt-google")
    said = page.locator("#messages").first.inner_text()
    assert f"Pitt-Google, history of {record['objectId']}: ZTF: " in said and " in BigQuery" in said, said
    assert PhotometryReducedDatum.objects.filter(target=target, source_name="Pitt-Google").count() > 1
    page.locator("#messages").first.scroll_into_view_if_needed()
    shot("12-fetched-history", full_page=False)
