"""A broker query's results page as an astronomer uses it: the alerts they choose from stay on the page when
*Create Targets* fails, the score column says what the score is, and times read the same as on the DataService
pages. On the emulators, PostgreSQL and the TOM's own views through Django's test client."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse
from tom_alerts.models import BrokerQuery
from tom_targets.models import Target

from tom_pittgoogle.adapters.broker_stream_rest import BrokerStreamRest
from tom_pittgoogle.routes.stream_rest import ConsumerStreamRest

from .test_tom_pages import STREAM_FILTER, create_query, run_query

pytestmark = pytest.mark.django_db


def submit_create_targets(client, page, alert_ids):
    """Submit the results page's *Create Targets* form as a browser does: its action, its hidden fields."""
    content = page.content.decode()
    form = re.search(r'<form method="POST" action="([^"]+)">(.*?)</form>', content, re.DOTALL)
    assert form, content[:3000]
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(2)))
    data = {name: html.unescape(value) for name, value in hidden.items()}
    data["alerts"] = [str(i) for i in alert_ids]
    return client.post(html.unescape(form.group(1)), data, follow=True)


def shown(page) -> list[str]:
    return [str(alert.id) for alert in page.context["alerts"]]


def test_create_targets_failing_shows_the_alerts_the_user_chose_from_not_a_new_pull(
        astronomer, topic_name, publish, packets):
    """The user picks an alert whose object already has a Target: TOM Toolkit refuses it and sends the user back;
    the page shows the same alerts (they were pulled and acknowledged), and nothing else is pulled."""
    ConsumerStreamRest(topic_name)
    publish(topic_name, packets)
    query = create_query(astronomer, BrokerStreamRest.name, subscription_name=topic_name, max_results=3, timeout=2,
                         **STREAM_FILTER)
    first = run_query(astronomer, query)
    chosen = first.context["alerts"]
    assert len(chosen) == 3
    last_run = BrokerQuery.objects.get(pk=query.pk).last_run
    Target.objects.create(name=chosen[0].name, type="SIDEREAL", ra=1.0, dec=2.0)

    back = submit_create_targets(astronomer, first, [chosen[0].id])
    assert back.status_code == 200
    assert "already exists" in back.content.decode()
    assert shown(back) == shown(first), "the page the user is sent back to shows other alerts than they chose from"
    assert BrokerQuery.objects.get(pk=query.pk).last_run == last_run  # showing them again is not a new run

    # Nothing was pulled meanwhile: the next run gets the alerts that follow.
    rest = ConsumerStreamRest(topic_name).pull_alerts(len(packets), lighten_alerts=True, max_wait=2)
    assert len(rest) == len(packets) - 3

    # From the page shown again, the other alerts still become Targets (and nothing selected says so there).
    again = submit_create_targets(astronomer, back, [])
    assert "select at least one alert" in again.content.decode() and shown(again) == shown(first)
    # An alert of another object than the refused one (two sample alerts may be of one object).
    other = next((alert for alert in chosen if alert.name != chosen[0].name), None)
    assert other is not None, f"the three alerts pulled are all of {chosen[0].name}: no other object to choose"
    done = submit_create_targets(astronomer, again, [other.id])
    assert done.redirect_chain[-1][0] == reverse("targets:list")
    assert Target.objects.filter(name=other.name).exists()


def test_results_kept_no_longer_send_the_user_to_the_query_list_with_a_message(astronomer):
    query = BrokerQuery.objects.create(name="old", broker=BrokerStreamRest.name, parameters={})
    response = astronomer.get(reverse("tom_pittgoogle:query-results", kwargs={"pk": query.pk, "key": "gone"}),
                              follow=True)
    assert response.redirect_chain[-1][0] == reverse("tom_alerts:list")
    assert "no longer kept" in response.content.decode()


def test_another_users_results_are_not_shown(astronomer, client, django_user_model, topic_name, publish, packets):
    ConsumerStreamRest(topic_name)
    publish(topic_name, packets[:2])
    query = create_query(astronomer, BrokerStreamRest.name, subscription_name=topic_name, max_results=2, timeout=2,
                         **STREAM_FILTER)
    key = run_query(astronomer, query).context["results_key"]
    assert key
    url = reverse("tom_pittgoogle:query-results", kwargs={"pk": query.pk, "key": key})
    assert len(astronomer.get(url).context["alerts"]) == 2
    astronomer.force_login(django_user_model.objects.create_user("someone-else", password="not-used"))
    assert astronomer.get(url).status_code == 302


def test_the_score_column_and_the_time_say_what_they_are(astronomer, topic_name, publish, packets, lsst_topic,
                                                        publish_lsst, ztf_table):
    """ZTF results say classtar, Rubin/LSST ones reliability; both broker and DataService results show the
    alert's UTC date and time (its JD on hover), never a bare JD in one place and a date in another."""
    from .lsst_samples import LSST_PACKETS
    from .test_dataservice import run_query as run_dataservice_query

    ConsumerStreamRest(topic_name)
    publish(topic_name, packets[:2])
    ztf = create_query(astronomer, BrokerStreamRest.name, subscription_name=topic_name, max_results=2, timeout=2,
                       **STREAM_FILTER)
    page = run_query(astronomer, ztf)
    content = page.content.decode()
    assert "Star/galaxy (classtar)</span></th>" in content
    jd = page.context["alerts"][0].alert["jd"]
    when = page.context["alerts"][0].timestamp.strftime("%Y-%m-%d %H:%M:%S")
    assert f'title="JD {jd:.5f}">{when} UTC</span>' in content

    ConsumerStreamRest(lsst_topic, survey="lsst")
    publish_lsst(lsst_topic, [packet for _, packet in LSST_PACKETS[:1]])
    BrokerQuery.objects.filter(name=f"{BrokerStreamRest.name} query").delete()
    lsst = create_query(astronomer, BrokerStreamRest.name, survey="lsst", subscription_name=lsst_topic,
                        max_results=1, timeout=2, classtar_gt_lt="lt")
    assert "Reliability</span></th>" in run_query(astronomer, lsst).content.decode()

    record = ztf_table[0]
    results = run_dataservice_query(astronomer, objectId=record["objectId"], max_results=1)
    table = results.content.decode()
    assert "<th>Time (UTC)</th>" in table and "Time (JD)" not in table
    shown_jd = results.context["results"][0]["jd"]
    assert f'title="JD {shown_jd:.5f}">' in table


def test_flow_control_and_message_ids_are_folded_under_advanced_settings(astronomer):
    from tom_pittgoogle.adapters.broker_stream_python import BrokerStreamPython

    page = astronomer.get(reverse("alerts:create") + f"?broker={BrokerStreamPython.name}").content.decode()
    advanced = page.index('id="pittgoogle-advanced"')
    assert page.index('name="subscription_name"') < advanced < page.index('name="max_backlog"')
    assert advanced < page.index('name="save_metadata"') < page.index("</details>")
    assert 'id="pittgoogle-advanced">' in page  # folded
    refused = astronomer.post(reverse("alerts:create"), {
        "query_name": "q", "broker": BrokerStreamPython.name, "subscription_name": "ztf-loop", "max_results": 3,
        "timeout": 3, "max_backlog": 0, "save_metadata": "yes", **STREAM_FILTER}).content.decode()
    assert 'id="pittgoogle-advanced" open>' in refused  # an error in it is not hidden


def test_update_reduced_data_says_what_it_did(astronomer, django_user_model, ztf_table):
    from tom_pittgoogle.adapters.dataservices import PittGoogleDataService

    record = ztf_table[1]
    target = Target.objects.create(name=record["objectId"], type="SIDEREAL", ra=1.0, dec=2.0)
    target.give_user_access(django_user_model.objects.get(username="astronomer"))
    update = {"target": target.pk, "data_service": PittGoogleDataService.name}
    first = astronomer.post(reverse("dataservices:update-data"), update, follow=True).content.decode()
    assert re.search(rf"Pitt-Google, history of {record['objectId']}: ZTF: \d+ alerts? found \(\d+ in BigQuery, 0 "
                     r"stored in this TOM\), \d+ new; .*\d+ new light-curve points? added", first), first[-3000:]
    again = astronomer.post(reverse("dataservices:update-data"), update, follow=True).content.decode()
    assert "its light curve already had every point of them" in again
    unknown = Target.objects.create(name="ZTF99zzzzzzz", type="SIDEREAL", ra=1.0, dec=2.0)
    unknown.give_user_access(django_user_model.objects.get(username="astronomer"))
    none = astronomer.post(reverse("dataservices:update-data"), {**update, "target": unknown.pk},
                           follow=True).content.decode()
    assert ("Pitt-Google: no ZTF or Rubin/LSST alert of ZTF99zzzzzzz (within 1.5 arcsec of it or named after it) in "
            "BigQuery or among the alerts stored in this TOM; nothing to add.") in none
