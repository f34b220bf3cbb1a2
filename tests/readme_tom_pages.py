"""Run inside the TOM that tests/test_readme_tom.py builds from the README's install lines (its own process, its
settings): store a few alerts, then visit the pages the install lines promise as a logged-in user and print what
was found, as JSON, for the test to judge."""

import json

import django

django.setup()

from django.test.utils import setup_test_environment  # noqa: E402

# As Django's test runner does: the test client's host is allowed, and responses carry their template context.
setup_test_environment()

from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import NoReverseMatch, reverse  # noqa: E402

from tom_pittgoogle.core.alerts import lighten_alert  # noqa: E402
from tom_pittgoogle.core.store import DjangoAlertStore  # noqa: E402
from tom_pittgoogle.demo.sample_alerts import make_alerts  # noqa: E402

STORED = 5
PER_PAGE = 2


def main() -> dict:
    found: dict = {}
    found["stored"] = DjangoAlertStore().save_alerts([lighten_alert(record) for record in make_alerts(STORED, seed=7)])
    user = get_user_model().objects.create_user("readme-reader", password="not-used")
    client = Client()
    client.force_login(user)

    try:
        status_url = reverse("tom_pittgoogle:status")
    except NoReverseMatch:
        status_url = None
    found["status_url"] = status_url
    found["status_code"] = client.get(status_url or "/pittgoogle/status/").status_code

    create_url = reverse("dataservices:create")
    form = client.get(create_url + "?data_service=Pitt-Google")
    found["form_code"] = form.status_code
    found["form_links_status"] = bool(status_url) and f'href="{status_url}"' in form.content.decode()

    fields = {"data_service": "Pitt-Google", "survey": "ztf", "route": "stored", "objectId": "", "candid": "",
              "subscription_name": "", "max_results": PER_PAGE, "timeout": 2, "classtar_threshold": "",
              "classtar_gt_lt": "lt", "reliability_threshold": "", "query_name": ""}
    response = client.post(create_url, fields)
    found["query_code"] = response.status_code
    results = client.get(response.url) if response.status_code == 302 else response
    page = results.content.decode()
    found["results_code"] = results.status_code
    context = results.context or {}
    found["results_rows"] = len(context["results"]) if "results" in context else None
    try:
        next_url = reverse("tom_pittgoogle:stored-page", args=[2])
    except NoReverseMatch:
        next_url = None
    found["next_link"] = bool(next_url) and f'href="{next_url}"' in page and "pittgoogle-next-page" in page
    if found["next_link"]:
        following = client.get(next_url, follow=True)
        found["second_page_code"] = following.status_code
        pager = following.context.get("stored_page") if following.context else None
        found["second_page_number"] = pager.page if pager else None
    return found


if __name__ == "__main__":
    print("PAGES " + json.dumps(main()))
