"""readstreams with invalid Pitt-Google OPTIONS stops at start with one clear line and exit status 1; a stream that
stops on a fatal error makes the process exit 1 too, so that a process supervisor sees the failure."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from tom_pittgoogle.adapters.alertstream import PittGoogleAlertStream

from .test_alertstream import ReadStreams

pytestmark = pytest.mark.django_db(transaction=True)


def assert_one_line_and_no_traceback(err: str, says: str) -> None:
    assert err.count(says) >= 1, err
    assert "Traceback" not in err, err


def test_readstreams_with_targets_for_naming_no_user_exits_1_at_start(pubsub_emulator):
    code, _, err = ReadStreams(STREAMS=[{"subscription": "ztf-loop", "create_targets": True}],
                               TARGETS_FOR="alice").finish()
    assert code == 1
    assert_one_line_and_no_traceback(err, "TARGETS_FOR names no TOM user 'alice'")
    assert "listening to" not in err  # it never started


def test_readstreams_whose_stream_stops_on_a_fatal_error_exits_1_without_a_traceback(pubsub_emulator):
    code, _, err = ReadStreams(STREAMS=[{"subscription": "no-such-stream"}], TIMEOUT=30).finish()
    assert code == 1
    assert_one_line_and_no_traceback(err, "Pitt-Google publishes no topic")
    assert "exiting with status 1" in err


@pytest.mark.parametrize("options, says", [
    ({"MAX_RESULTS": 0}, "MAX_RESULTS must be a positive number or None"),
    ({"TIMEOUT": "soon"}, "TIMEOUT must be a positive number or None"),
    ({"BATCH_SIZE": None}, "BATCH_SIZE must be a positive number, not None"),
    ({"TOPIC_HANDLERS": {"ztf-loop": "no_such_module.handler"}}, "TOPIC_HANDLERS"),
    ({"TARGETS_FOR": "nobody"}, "TARGETS_FOR names no TOM user 'nobody'"),
    ({"STREAMS": [{"subscription": "ztf-loop", "filter": {"attribute_filter": "attributes.fid = 1"}}]},
     r"Subscription filter, character 18 \(at \"1\"\): the value must be a string in double quotes"),
    ({"STREAMS": [{"subscription": "ztf-loop", "filter": {"fid": "4"}}]}, r"fid is 1 \(g\), 2 \(r\) or 3 \(i\)"),
])
def test_each_invalid_option_is_refused_before_listening(options, says, pubsub_emulator):
    with pytest.raises(ImproperlyConfigured, match=says):
        PittGoogleAlertStream(**options)


def test_a_tom_without_a_google_cloud_project_is_refused_before_listening(settings, monkeypatch, pubsub_emulator):
    settings.GOOGLE_CLOUD_PROJECT = None
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(ImproperlyConfigured, match="GOOGLE_CLOUD_PROJECT is not set"):
        PittGoogleAlertStream(STREAMS=[{"subscription": "ztf-loop"}])


def test_targets_for_naming_a_user_is_accepted(django_user_model, pubsub_emulator):
    alice = django_user_model.objects.create_user("alice")
    assert PittGoogleAlertStream(STREAMS=[{"subscription": "ztf-loop"}], TARGETS_FOR="alice")._targets_user == alice
