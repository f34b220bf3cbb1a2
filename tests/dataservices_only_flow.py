"""Run with ``--ds tests.settings_dataservices_only`` (by ``test_tom_without_tom_alerts.py``): a TOM with
tom_dataservices and no tom_alerts or tom-alertstreams, through its pages and commands on the emulators.

Not named ``test_*.py``: the main session, whose TOM has tom_alerts, does not collect it.
"""

from __future__ import annotations

import io
import sys

import pytest
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse

# The DataService's page tests, run here as they are in the TOM with tom_alerts.
from tests.test_dataservice import (  # noqa: F401  (pytest collects the imported tests)
    test_bigquery_history_to_targets_with_aliases_extras_and_light_curve,
    test_pittgoogle_is_offered_on_the_data_services_pages,
    test_pubsub_pull_with_the_classtar_filter_stores_and_shows_what_passes,
    test_update_reduced_data_fetches_a_targets_light_curve_from_bigquery,
)

# The Target page's Pitt-Google tab and history button, here as in the TOM with tom_alerts.
from tests.test_target_page import (  # noqa: F401
    test_the_button_fetches_a_ztf_objects_history_from_bigquery,
    test_the_tab_lists_the_targets_alerts_from_both_surveys_newest_first,
)

pytestmark = pytest.mark.django_db


def test_this_tom_has_neither_tom_alerts_nor_tom_alertstreams():
    from django.conf import settings

    assert "tom_alerts" not in settings.INSTALLED_APPS
    with pytest.raises(NoReverseMatch):
        reverse("alerts:create")
    with pytest.raises(ImportError):
        import tom_alerts  # noqa: F401


def test_the_system_check_passes():
    out = io.StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


def test_the_alert_stream_module_says_what_to_install():
    with pytest.raises(ImportError, match=r"pip install 'tom-pittgoogle\[alertstreams\]'"):
        import tom_pittgoogle.adapters.alertstream  # noqa: F401


def test_pittgoogle_stream_runs_without_tom_alerts(topic_name, publish, packets):
    from tom_pittgoogle.models import Alert
    from tom_pittgoogle.routes.stream_python import ConsumerStreamPython

    ConsumerStreamPython(topic_name)
    publish(topic_name, packets)
    call_command("pittgoogle_stream", "--subscription", topic_name, "--max-results", str(len(packets)),
                 "--timeout", "30", stdout=io.StringIO())
    assert Alert.objects.count() == len(packets)


def test_no_module_imported_tom_alerts():
    assert not [name for name in sys.modules if name.split(".")[0] in ("tom_alerts", "tom_alertstreams")]
