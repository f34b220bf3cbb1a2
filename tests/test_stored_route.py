"""The stored route: what the ingester stored, found through TOM Toolkit's data-services pages with the same
filters as the stream routes, sorted and paged, made into Targets with light curves; on the Pub/Sub emulator and
PostgreSQL."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils.html import escape
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

from tom_pittgoogle.core import alert_columns
from tom_pittgoogle.core.store import DjangoAlertStore
from tom_pittgoogle.demo.sample_alerts import make_alerts, make_packets
from tom_pittgoogle.demo.sample_lsst import ztf_supernnova_json
from tom_pittgoogle.models import Alert
from tom_pittgoogle.routes import stored_alerts
from tom_pittgoogle.routes.stream_python import ConsumerStreamPython
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .test_dataservice import create_targets, form_fields, run_query

pytestmark = pytest.mark.django_db


@pytest.fixture
def astronomer(client, django_user_model):
    """A logged-in TOM user (the stored route's pages, like the others, need one)."""
    client.user = django_user_model.objects.create_user("night-astronomer", password="not-used")
    client.force_login(client.user)
    return client


def stored_fields(**fields) -> dict:
    return form_fields(route="stored", **fields)


def run_stored(client, **fields):
    return run_query(client, **stored_fields(**fields))


def ingest(topic: str) -> str:
    out = io.StringIO()
    call_command("pittgoogle_stream", "--subscription", topic, "--timeout", "3", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def jd_to_iso(jd: float) -> str:
    return (datetime(2000, 1, 1, 12, tzinfo=UTC) + timedelta(days=jd - 2451545.0)).isoformat()


#: SuperNNova's SN Ia probabilities of the night's ztf-SuperNNova alerts.
SN_IA_PROBABILITIES = [0.05, 0.3, 0.45, 0.55, 0.8, 0.97]


@pytest.fixture
def night(topic_name, publish, packets) -> list[dict]:
    """An ingester run over the sample packets, a night of generated ones and some as Pitt-Google's ztf-SuperNNova
    stream sends them (classifier outputs): the stored lightened alerts."""
    ConsumerStreamPython(topic_name)
    classified = [ztf_supernnova_json(record, p)
                  for record, p in zip(make_alerts(len(SN_IA_PROBABILITIES), seed=31), SN_IA_PROBABILITIES,
                                       strict=True)]
    publish(topic_name, packets + make_packets(40, seed=23) + classified)
    out = ingest(topic_name)
    assert f"stored {len(packets) + 40 + len(classified)}," in out.splitlines()[-1]
    return [dict(alert) for alert in Alert.objects.values_list("alert", flat=True)]


def expected(parameters: dict, alerts: list[dict]) -> list[str]:
    """The source ids the filter keeps, in Python (what a stream route keeps)."""
    return sorted(a["source_id"] for a in alerts if stored_alerts.passes(parameters, a))


def filters_of(alerts: list[dict]) -> list[dict]:
    """One form post per filter, each keeping some but not all of ``alerts``."""
    ztf = [a for a in alerts if a["survey"] == "ztf"]
    middle = sorted(a["jd"] for a in ztf)[len(ztf) // 2]
    center = ztf[3]
    classtars = sorted(a["classtar"] for a in ztf if a.get("classtar") is not None)
    drbs = sorted(a["scores"]["drb"] for a in ztf if a.get("scores", {}).get("drb") is not None)
    mags = sorted(a["mag"] for a in ztf)
    return [
        {"objectId": center["object_id"]},
        {"candid": center["source_id"]},
        {"band": center["band"]},
        {"mag_max": mags[len(mags) // 2]},
        {"mag_min": mags[len(mags) // 3], "mag_max": mags[2 * len(mags) // 3]},
        {"classtar_threshold": classtars[len(classtars) // 2], "classtar_gt_lt": "gt"},
        {"classtar_threshold": classtars[len(classtars) // 2], "classtar_gt_lt": "lt"},
        {"cone_ra": center["ra"], "cone_dec": center["dec"], "cone_radius_arcsec": 7200},
        {"start_time": jd_to_iso(middle)},
        {"end_time": jd_to_iso(middle)},
        {"score_name": "drb", "score_min": drbs[len(drbs) // 2]},
        {"score_name": "supernnova_prob_class0", "score_min": 0.5},
        {"predicted_class": "ia"},
        {"predicted_class": "Non-Ia", "mag_max": mags[-1]},
    ]


def test_each_filter_finds_what_the_stream_filter_keeps(astronomer, night):
    for fields in filters_of(night):
        keep = expected({"survey": "ztf", **fields}, night)
        assert 0 < len(keep) < len(night), fields
        page = run_stored(astronomer, max_results=100, **fields)
        assert page.context["query_feedback"] == ""
        found = sorted(row["source_id"] for row in page.context["results"])
        assert found == keep, fields
        assert page.context["stored_page"].total == len(keep)


@pytest.mark.parametrize("which", ["classtar_threshold", "cone_ra", "end_time", "score_name"])
def test_a_filter_keeps_the_same_alerts_as_a_pubsub_pull_of_the_same_alerts(astronomer, topic_name, publish,
                                                                             packets, which):
    from tom_pittgoogle.core.alerts import decode_alert, lighten_alert

    alerts = [lighten_alert(decode_alert(p)) for p in packets]
    fields = next(f for f in filters_of(alerts) if which in f)
    ConsumerStreamRest(topic_name)  # before the alerts are published
    publish(topic_name, packets)
    pulled = run_query(astronomer, route="pubsub", subscription_name=topic_name, max_results=len(packets),
                       timeout=2, **fields).context["results"]
    assert 0 < len(pulled) < len(packets)
    # The stored alerts, as an unfiltered ingester would have them (the pull stored only what passed).
    DjangoAlertStore().save_alerts(alerts)
    stored = run_stored(astronomer, max_results=100, **fields)
    assert sorted(r["source_id"] for r in stored.context["results"]) == sorted(r["source_id"] for r in pulled)


def test_each_sort_orders_the_stored_alerts(astronomer, night):
    ztf = [a for a in night if a["survey"] == "ztf"]
    newest = run_stored(astronomer, max_results=100, sort="newest").context["results"]
    assert [r["jd"] for r in newest] == sorted((a["jd"] for a in ztf), reverse=True)
    brightest = run_stored(astronomer, max_results=100, sort="brightest").context["results"]
    assert [r["mag"] for r in brightest] == sorted(a["mag"] for a in ztf)
    best = run_stored(astronomer, max_results=100, sort="score").context["results"]
    scores = [alert_columns.best_score(r["alert"]) for r in best]
    assert scores == sorted(scores, key=lambda s: (s is None, -(s or 0)))
    # A classifier's probability of its class ranks an alert; without one, its real/bogus score (drb).
    classified = [score for row, score in zip(best, scores, strict=True) if row["alert"].get("classifiers")]
    assert classified == pytest.approx(sorted((max(p, 1 - p) for p in SN_IA_PROBABILITIES), reverse=True))
    assert max(s for r, s in zip(best, scores, strict=True) if not r["alert"].get("classifiers")) == max(
        a["scores"]["drb"] for a in ztf if not a.get("classifiers") and a["scores"].get("drb") is not None)


def test_create_targets_from_stored_alerts_brings_light_curves(astronomer, night):
    results = run_stored(astronomer, max_results=5, sort="brightest").context["results"]
    # Two alerts of two objects (two of one object would make one Target with both alerts' points).
    chosen = [results[0], next(row for row in results if row["name"] != results[0]["name"])]
    create_targets(astronomer, [row["id"] for row in chosen])
    for row in chosen:
        target = Target.objects.get(name=row["name"])
        points = PhotometryReducedDatum.objects.filter(target=target)
        assert points.count() == row["points"] > 1
        assert astronomer.user.has_perm("tom_targets.view_target", target)


def classified(index: int, classes: dict[str, tuple[str, float]]) -> dict:
    """A lightened alert with classifier outputs in the formats contract's shape."""
    return {
        "survey": "lsst", "object_id": str(1000 + index), "source_id": str(5000 + index), "jd": 2461000.5 + index,
        "ra": 10.0 + index / 100, "dec": -5.0, "band": "r", "mag": 20.0 - index / 10, "mag_err": 0.1,
        "photometry": [], "reliability": 0.5, "scores": {"reliability": 0.5},
        "classifiers": {name: {"class": label, "probability": p, "score": None, "model": None, "version": None}
                        for name, (label, p) in classes.items()},
    }


def test_classifier_outputs_filter_and_sort_the_stored_alerts(astronomer):
    alerts = [
        classified(0, {"supernnova": ("SN Ia", 0.91)}),
        classified(1, {"supernnova": ("not Ia", 0.7), "upsilon": ("RRL", 0.97)}),
        classified(2, {"upsilon": ("sn ia", 0.4)}),
        classified(3, {}),
    ]
    DjangoAlertStore().save_alerts(alerts)
    page = run_stored(astronomer, survey="lsst", max_results=10, predicted_class="  Sn IA ")
    assert sorted(r["source_id"] for r in page.context["results"]) == ["5000", "5002"]
    best = run_stored(astronomer, survey="lsst", max_results=10, sort="score").context["results"]
    assert [r["source_id"] for r in best] == ["5001", "5000", "5003", "5002"]  # 0.97, 0.91, reliability 0.5, 0.4
    for fields in ({"predicted_class": "rrl"}, {"predicted_class": "SN Ia"}):
        keep = expected({"survey": "lsst", **fields}, alerts)
        found = run_stored(astronomer, survey="lsst", max_results=10, **fields).context["results"]
        assert sorted(r["source_id"] for r in found) == keep


def ztf_object_id(number: int) -> str:
    """A valid ZTF object id for each number: ZTF25 and seven lowercase letters."""
    letters = ""
    for _ in range(7):
        number, digit = divmod(number, 26)
        letters = chr(ord("a") + digit) + letters
    return f"ZTF25{letters}"


def bulk_rows(n: int, seed: int = 5) -> list[Alert]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        jd = 2461000.5 + rng.random() * 3
        mag = round(rng.uniform(14, 22), 1)  # many equal magnitudes: ties must still page cleanly
        alert = {"survey": "ztf", "object_id": ztf_object_id(i), "source_id": str(10**12 + i), "jd": jd,
                 "ra": rng.uniform(0, 360), "dec": rng.uniform(-30, 80), "band": "g", "mag": mag, "mag_err": 0.05,
                 "photometry": [], "scores": {"drb": round(rng.random(), 2)}}
        alert["classtar"] = None
        rows.append(Alert(survey="ztf", source_id=alert["source_id"], object_id=alert["object_id"], jd=jd,
                          ra=alert["ra"], dec=alert["dec"], band="g", mag=mag, mag_err=0.05, alert=alert,
                          **alert_columns.indexed_columns(alert)))
    Alert.objects.bulk_create(rows, batch_size=1000)
    return rows


@pytest.mark.parametrize("sort", list(stored_alerts.SORTS))
def test_paging_through_thousands_of_stored_alerts_shows_each_once_in_order(astronomer, sort):
    rows = bulk_rows(3000)
    per_page = 100
    first = run_stored(astronomer, max_results=per_page, sort=sort)
    pager = first.context["stored_page"]
    assert (pager.total, pager.pages, pager.first, pager.last) == (3000, 30, 1, 100)
    seen = [r["source_id"] for r in first.context["results"]]
    page = first
    # Follow each page's Next page link to the last page.
    for number in range(2, 31):
        link = reverse("tom_pittgoogle:stored-page", args=[number])
        assert f'href="{link}"' in page.content.decode()
        response = astronomer.get(link)
        assert response.status_code == 302 and response.url == reverse("dataservices:run")
        page = astronomer.get(response.url)
        assert page.context["stored_page"].page == number
        seen += [r["source_id"] for r in page.context["results"]]
    assert "pittgoogle-next-page" not in page.content.decode()
    assert len(seen) == len(set(seen)) == 3000
    key = {"newest": lambda a: (-a["jd"],), "brightest": lambda a: (a["mag"],),
           "score": lambda a: (-a["scores"]["drb"],)}[sort]
    by_id = {row.alert["source_id"]: row.alert for row in rows}
    assert [key(by_id[s]) for s in seen] == sorted(key(a) for a in by_id.values())


def test_the_stored_route_refuses_half_a_filter_on_the_form(astronomer):
    response = astronomer.post(reverse("dataservices:create"), stored_fields(cone_ra=10, cone_dec=5))
    assert response.status_code == 200
    # Refused with an error that names the cone, shown on the page (the word alone is on every form: its labels).
    errors = [error for field_errors in response.context["form"].errors.values() for error in field_errors]
    about_the_cone = [error for error in errors if "cone" in error.lower()]
    assert about_the_cone, f"half a cone was not refused with an error naming it: {errors}"
    assert all(escape(error) in response.content.decode() for error in about_the_cone)
    response = astronomer.post(reverse("dataservices:create"), stored_fields(objectId="ZTF18abfkwnk", candid=1))
    assert response.status_code == 200 and "not both" in response.content.decode()


def test_the_form_links_to_the_ingester_status_page(astronomer):
    page = astronomer.get(reverse("dataservices:create") + "?data_service=Pitt-Google")
    assert reverse("tom_pittgoogle:status") in page.content.decode()


def test_beyond_the_count_limit_pages_still_lead_to_every_alert():
    bulk_rows(2950)
    seen, number = [], 1
    while number is not None:
        page = stored_alerts.search({"survey": "ztf", "max_results": 100, "page": number}, count_limit=1000)
        assert page.more and page.total == 1000 and page.pages > page.page
        seen += [alert["source_id"] for alert in page.alerts]
        number = page.next_page
    assert page.page == 30 and len(page.alerts) == 50
    assert len(seen) == len(set(seen)) == 2950


def test_a_stored_alert_that_no_longer_validates_is_left_out_not_the_page(astronomer, night):
    good = Alert.objects.order_by("-jd").first()
    Alert.objects.create(survey="ztf", source_id="999", object_id="not-a-ztf-id", jd=good.jd + 1, mag=15.0,
                         alert={**good.alert, "object_id": "not-a-ztf-id", "objectId": "not-a-ztf-id",
                                "source_id": "999", "jd": good.jd + 1})
    page = run_stored(astronomer, max_results=3)
    assert [row["source_id"] for row in page.context["results"]][0] == good.source_id


def test_an_empty_stored_result_says_what_was_searched(astronomer):
    page = run_stored(astronomer, objectId="ZTF18abfkwnk")
    assert page.context["results"] == []
    assert "this TOM has stored no ZTF alert that passes the filter" in page.content.decode()
    assert "pittgoogle-stored-pager" not in page.content.decode()
