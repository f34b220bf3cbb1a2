"""The Target page's Pitt-Google parts: the tab listing the alerts attached to the Target (both surveys, newest
first, paged, only for users who may see the Target) and the button that fetches the Target's history now (a POST
through the DataService, on bqemulator). On PostgreSQL; the alerts reach the Target through ``settle``, the path
every stream route takes."""

from __future__ import annotations

import copy
import html
import random
import re

import pytest
from django.urls import reverse
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

from tom_pittgoogle.core.pubsub import unpack_message
from tom_pittgoogle.core.rejected import RawMessage
from tom_pittgoogle.core.settle import settle, sort_outcomes
from tom_pittgoogle.core.store import DjangoAlertStore
from tom_pittgoogle.demo.pittgoogle_formats import lsst_message, ztf_message
from tom_pittgoogle.demo.sample_lsst import make_lsst_alert
from tom_pittgoogle.models import Alert, AttachedAlert
from tom_pittgoogle.templatetags.pittgoogle_targets import ALERTS_PER_PAGE, PAGE_PARAMETER, TAB_ID

from .test_target_attach import ARCSEC, DEC, LSST_VERSION, RA, ztf_night

pytestmark = pytest.mark.django_db

ZTF_SUBSCRIPTION = "projects/my-tom/subscriptions/ztf-supernnova"
LSST_SUBSCRIPTION = "projects/my-tom/subscriptions/lsst-supernnova"


def deliver(messages: list[tuple[bytes, dict]], topic: str, subscription: str) -> None:
    """Settle ``messages`` (data, attributes) as a stream route does: stored, attached, acknowledged."""
    unpacked = [(RawMessage(f"m{i}", data, attributes), unpack_message(data, topic=topic, attributes=attributes))
                for i, (data, attributes) in enumerate(messages)]
    passed, rejected = sort_outcomes(unpacked)
    assert not rejected, rejected
    settle(DjangoAlertStore(), passed, rejected, subscription=subscription)


def night_on(target_ra: float = RA, target_dec: float = DEC) -> tuple[list[dict], dict]:
    """The ZTF night near (RA, DEC) through ztf-SuperNNova and one Rubin alert through lsst-supernnova, delivered;
    returns the near object's ZTF records and the Rubin record."""
    _, near, _, _ = ztf_night()
    records = [r for r in _night_records() if r["objectId"] == near]
    rng = random.Random(19)
    deliver([ztf_message("ztf-SuperNNova", r, offset=i, rng=rng) for i, r in enumerate(_night_records())],
            "ztf-SuperNNova", ZTF_SUBSCRIPTION)
    lsst = copy.deepcopy(make_lsst_alert(*LSST_VERSION, index=3, seed=19))
    lsst["diaSource"]["ra"], lsst["diaSource"]["dec"] = target_ra, target_dec + 0.7 * ARCSEC
    deliver([lsst_message("lsst-supernnova", lsst, *LSST_VERSION, rng=rng)], "lsst-supernnova", LSST_SUBSCRIPTION)
    return records, lsst


def _night_records() -> list[dict]:
    """The records of :func:`ztf_night` (the same seed, so the same alerts and positions)."""
    from tom_pittgoogle.core.alerts.decode import decode_alert

    return [decode_alert(packet) for packet in ztf_night()[0]]


def private_target(name: str, owner=None) -> Target:
    target = Target.objects.create(name=name, type="SIDEREAL", ra=RA, dec=DEC, permissions=Target.Permissions.PRIVATE)
    if owner is not None:
        target.give_user_access(owner)
    return target


def tab_of(client, target: Target, page: int | None = None) -> str:
    """The HTML of the Target page's Pitt-Google tab pane."""
    query = f"?tab={TAB_ID}" + (f"&{PAGE_PARAMETER}={page}" if page else "")
    response = client.get(reverse("tom_targets:detail", kwargs={"pk": target.pk}) + query)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="{TAB_ID}-tab"' in html and ">Pitt-Google</a>" in html  # the tab's link among TOM Toolkit's
    start = html.index('<div id="pittgoogle-target-alerts">', html.index(f'<div class="tab-pane" id="{TAB_ID}">'))
    return html[start:html.index("<!-- end of pittgoogle-target-alerts -->", start)]


def table_rows(tab: str) -> list[str]:
    return re.findall(r'<tr class="pittgoogle-attached-alert".*?</tr>', tab, flags=re.S)


def test_the_tab_lists_the_targets_alerts_from_both_surveys_newest_first(astronomer):
    target = private_target("SN 2026tab", owner=astronomer.user)
    near_records, lsst = night_on()
    attached = AttachedAlert.objects.filter(target=target)
    assert attached.count() == len(near_records) + 1

    tab = tab_of(astronomer, target)
    rows = table_rows(tab)
    assert len(rows) == attached.count()
    assert f"{attached.count()} alerts attached (1 LSST, {len(near_records)} ZTF), newest first" in " ".join(
        tab.split())
    # Newest first: the rows' JDs descend, and each row is one stored alert with its time three ways.
    stored = {(a.survey, a.source_id): a for a in Alert.objects.all()}
    keys = [re.search(r'data-survey="(\w+)" data-source-id="(\d+)"', row).groups() for row in rows]
    jds = [stored[key].jd for key in keys]
    assert jds == sorted(jds, reverse=True)
    for row, key in zip(rows, keys, strict=True):
        alert = stored[key]
        assert f"{alert.jd:.5f}" in row and f"{alert.jd - 2400000.5:.5f}" in row
        assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z">', row)
        assert f"{alert.mag:.3f} ± {alert.mag_err:.3f}" in row and f"<td>{alert.band}</td>" in row
        classifier = alert.alert["classifiers"]["supernnova"]
        assert f"supernnova: {classifier['class']}" in row
        assert (ZTF_SUBSCRIPTION if key[0] == "ztf" else LSST_SUBSCRIPTION) in row
    # ZTF rows link the object's page; the Rubin row shows its flux in nJy.
    ztf_row = next(row for row, key in zip(rows, keys, strict=True) if key[0] == "ztf")
    assert f'href="https://alerce.online/object/{near_records[0]["objectId"]}"' in ztf_row
    lsst_row = next(row for row, key in zip(rows, keys, strict=True) if key[0] == "lsst")
    assert f"{lsst['diaSource']['psfFlux']:.1f} ± {lsst['diaSource']['psfFluxErr']:.1f}" in lsst_row

    # An alert pruned from the store keeps its row: what the attachment knows, last.
    Alert.objects.filter(survey=keys[0][0], source_id=keys[0][1]).delete()
    rows = table_rows(tab_of(astronomer, target))
    assert len(rows) == attached.count() and f'data-source-id="{keys[0][1]}"' in rows[-1]
    assert "not in this TOM's alert store" in rows[-1] and keys[0][1] in rows[-1]


def test_the_tab_is_paged_when_a_target_has_many_alerts(astronomer, settings):
    target = private_target("SN 2026many", owner=astronomer.user)
    near = ztf_night()[1]
    records = [r for r in _night_records() if r["objectId"] == near]
    # More alerts of the object than a page holds: copies of its alerts with other candids, a day apart each.
    rng = random.Random(3)
    many = []
    for i in range(ALERTS_PER_PAGE + 2):
        record = copy.deepcopy(records[i % len(records)])
        record["candid"] = record["candidate"]["candid"] = 3_000_000_000_000_000_000 + i
        record["candidate"]["jd"] = 2460800.5 + i
        many.append(ztf_message("ztf-SuperNNova", record, offset=i, rng=rng))
    deliver(many, "ztf-SuperNNova", ZTF_SUBSCRIPTION)
    assert AttachedAlert.objects.filter(target=target).count() == len(many)

    first = tab_of(astronomer, target)
    assert len(table_rows(first)) == ALERTS_PER_PAGE
    assert f"{len(many)} alerts attached" in first and f"alerts 1 to {ALERTS_PER_PAGE} shown" in first
    assert f"?tab={TAB_ID}&amp;{PAGE_PARAMETER}=2" in first  # the next page's link keeps the tab open
    assert "3000000000000000026" in first and "3000000000000000000" not in first  # newest first
    second = tab_of(astronomer, target, page=2)
    assert len(table_rows(second)) == 2
    assert "3000000000000000000" in second and "3000000000000000026" not in second


def test_a_target_without_alerts_says_so(astronomer):
    target = private_target("SN 2026none", owner=astronomer.user)
    tab = tab_of(astronomer, target)
    assert "No Pitt-Google alert has been attached to SN 2026none yet" in tab
    assert not table_rows(tab)


def test_another_users_private_target_shows_none_of_its_alerts(astronomer, django_user_model):
    from tom_pittgoogle.templatetags.pittgoogle_targets import history_button, target_alerts_tab

    owner = django_user_model.objects.create_user("owner", password="not-used")
    target = private_target("SN 2026private", owner=owner)
    night_on()
    assert AttachedAlert.objects.filter(target=target).exists()
    response = astronomer.get(reverse("tom_targets:detail", kwargs={"pk": target.pk}))
    assert refused(response)  # TOM Toolkit's page refuses; the tab's own check refuses too:

    class Request:
        user = astronomer.user
        GET: dict = {}

    context = target_alerts_tab({"target": target, "request": Request()})
    assert context == {"pittgoogle_alerts": {"allowed": False}}
    assert history_button({"target": target, "request": Request()}) == {"pittgoogle_history_url": ""}
    Request.user = owner
    assert target_alerts_tab({"target": target, "request": Request()})["pittgoogle_alerts"]["total"] > 0

    # An OPEN Target: anyone sees its alerts (TOM Toolkit's rule), only a logged-in user gets the button.
    from django.contrib.auth.models import AnonymousUser

    Target.objects.filter(pk=target.pk).update(permissions=Target.Permissions.OPEN)
    target.refresh_from_db()
    Request.user = AnonymousUser()
    assert target_alerts_tab({"target": target, "request": Request()})["pittgoogle_alerts"]["total"] > 0
    assert history_button({"target": target, "request": Request()}) == {"pittgoogle_history_url": ""}
    Request.user = astronomer.user
    assert history_button({"target": target, "request": Request()}) == {
        "pittgoogle_history_url": history_url(target)}


# --- the button ------------------------------------------------------------------------------------------------


def refused(response) -> bool:
    """TOM Toolkit's answer to a 403 (its ``Raise403Middleware``): to the login page, saying why."""
    return response.status_code == 302 and response.url.startswith(reverse("login") + "?next=")


def history_url(target: Target) -> str:
    return reverse("tom_pittgoogle:target-history", kwargs={"pk": target.pk})


def test_the_button_fetches_a_ztf_objects_history_from_bigquery(astronomer, ztf_table):
    record = ztf_table[1]
    target = Target.objects.create(name=record["objectId"], type="SIDEREAL", ra=record["candidate"]["ra"],
                                   dec=record["candidate"]["dec"])
    target.give_user_access(astronomer.user)
    page = astronomer.get(reverse("tom_targets:detail", kwargs={"pk": target.pk})).content.decode()
    assert f'action="{history_url(target)}"' in page and "Fetch Pitt-Google history" in page
    assert 'name="csrfmiddlewaretoken"' in page[page.index('id="pittgoogle-fetch-history"'):]

    response = astronomer.post(history_url(target), follow=True)
    assert response.redirect_chain == [(reverse("tom_targets:detail", kwargs={"pk": target.pk}) + f"?tab={TAB_ID}",
                                        302)]
    points = PhotometryReducedDatum.objects.filter(target=target, source_name="Pitt-Google")
    found = points.count()
    assert found > 1
    said = [str(m) for m in response.context["messages"]]
    # What the DataService's path says (it may search more places than BigQuery's alerts of the object): what it
    # found of the Target, and the points it added.
    assert len(said) == 1 and said[0].startswith("Pitt-Google") and record["objectId"] in said[0], said
    assert f"{found} new light-curve point" in said[0], said

    again = [str(m) for m in astronomer.post(history_url(target), follow=True).context["messages"]]
    assert points.count() == found
    assert len(again) == 1 and again[0].startswith("Pitt-Google") and "new light-curve point" not in again[0], again


def test_the_button_is_refused_to_who_may_not_change_the_target(client, astronomer, django_user_model, ztf_table):
    record = ztf_table[1]
    owner = django_user_model.objects.create_user("owner", password="not-used")
    target = private_target(record["objectId"], owner=owner)
    # Not logged in: to the login page, nothing fetched.
    client.logout()
    assert refused(client.post(history_url(target)))
    client.force_login(astronomer.user)
    assert refused(client.post(history_url(target)))
    assert client.get(history_url(target)).status_code == 405  # a query runs only on a POST
    assert not PhotometryReducedDatum.objects.filter(target=target).exists()


def test_the_button_checks_the_csrf_token(django_user_model, ztf_table):
    from django.test import Client

    user = django_user_model.objects.create_user("careful", password="not-used")
    target = private_target(ztf_table[1]["objectId"], owner=user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert refused(client.post(history_url(target)))
    assert not PhotometryReducedDatum.objects.filter(target=target).exists()


def test_a_missing_table_is_named_on_the_page_and_adds_nothing(astronomer, ztf_table, settings):
    record = ztf_table[1]
    target = private_target(record["objectId"], owner=astronomer.user)
    settings.PITTGOOGLE_BIGQUERY_TABLE = "ardent-cycling-243415.ztf.retired_table"
    response = astronomer.post(history_url(target), follow=True)
    assert response.status_code == 200
    said = [str(m) for m in response.context["messages"]]
    assert len(said) == 1 and "ZTF BigQuery tables not searched" in said[0], said
    assert "retired_table does not exist" in said[0], said
    assert "retired_table does not exist" in response.content.decode()  # shown on the Target's page
    assert not PhotometryReducedDatum.objects.filter(target=target).exists()


def test_a_target_pitt_google_cannot_search_for_is_a_failure_on_the_page(astronomer):
    """No coordinates and no survey object id among its names: nothing tells which alerts are its."""
    target = Target.objects.create(name="my-favourite-comet", type="NON_SIDEREAL", scheme="MPC_COMET",
                                   permissions=Target.Permissions.PRIVATE)
    target.give_user_access(astronomer.user)
    response = astronomer.post(history_url(target), follow=True)
    assert response.status_code == 200
    said = [html.unescape(str(m)) for m in response.context["messages"]]
    assert len(said) == 1 and said[0].startswith("Could not fetch the Pitt-Google history of my-favourite-comet:"), said
    assert not PhotometryReducedDatum.objects.filter(target=target).exists()


def test_without_google_credentials_the_button_reads_the_stored_alerts_and_says_why(astronomer,
                                                                                   no_site_credentials):
    target = private_target("ZTF18abfkwnk", owner=astronomer.user)
    response = astronomer.post(history_url(target), follow=True)
    assert response.status_code == 200
    said = [html.unescape(str(m)) for m in response.context["messages"]]
    assert len(said) == 1 and "BigQuery not searched: No Google credentials" in said[0], said
    assert "Only the alerts stored in this TOM were read." in said[0], said
    connect = reverse("tom_pittgoogle:oauth-connection")
    assert f'<a href="http://testserver{connect}">' in response.content.decode()  # where to connect, as a link
    assert not PhotometryReducedDatum.objects.filter(target=target).exists()


def test_an_unexpected_failure_is_a_plain_message(astronomer, ztf_table, monkeypatch, caplog):
    """A failure nobody foresaw (here the DataService's search raising an error of no known kind) is a message,
    not a 500; its text (which may say what the user should not read) is left to the server's log."""
    from tom_pittgoogle.adapters.dataservices import PittGoogleDataService

    def broken(self, target, **kwargs):
        raise RuntimeError("internal detail 42")

    monkeypatch.setattr(PittGoogleDataService, "query_reduced_data", broken)
    target = private_target(ztf_table[1]["objectId"], owner=astronomer.user)
    response = astronomer.post(history_url(target), follow=True)
    assert response.status_code == 200
    said = [html.unescape(str(m)) for m in response.context["messages"]]
    assert said == [f"Could not fetch the Pitt-Google history of {target.name}: an unexpected error (the server's "
                    "log has the details)"], said
    assert "internal detail" not in response.content.decode()
    assert f"fetching the Pitt-Google history of Target {target.pk} failed" in caplog.text

# --- the admin -------------------------------------------------------------------------------------------------


def test_the_admin_lists_attached_alerts_and_the_target_index_read_only(client, django_user_model):
    admin = django_user_model.objects.create_superuser("admin", password="not-used")
    client.force_login(admin)
    target = private_target("SN 2026admin")
    near_records, lsst = night_on()
    near = near_records[0]["objectId"]

    url = reverse("admin:tom_pittgoogle_attachedalert_changelist")
    rubin = client.get(url, {"survey__exact": "lsst"}).context["cl"].result_list
    assert [(a.target_id, a.object_id) for a in rubin] == [(target.pk, str(lsst["diaObject"]["diaObjectId"]))]
    page = client.get(url, {"q": near})
    assert page.status_code == 200
    shown = page.context["cl"].result_list
    assert {(a.target_id, a.survey, a.object_id) for a in shown} == {(target.pk, "ztf", near)}
    assert len(shown) == len(near_records) and ZTF_SUBSCRIPTION in page.content.decode()
    assert reverse("admin:tom_pittgoogle_attachedalert_add") not in page.content.decode()
    one = AttachedAlert.objects.filter(target=target).first()
    detail = client.get(reverse("admin:tom_pittgoogle_attachedalert_change", args=[one.pk]))
    assert detail.status_code == 200 and not detail.context["has_change_permission"]

    positions = client.get(reverse("admin:tom_pittgoogle_targetposition_changelist"), {"q": "SN 2026admin"})
    assert positions.status_code == 200
    assert [p.target_id for p in positions.context["cl"].result_list] == [target.pk]
