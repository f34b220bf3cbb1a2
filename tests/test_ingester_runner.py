"""The one ingester runner that ``pittgoogle_stream`` and the alert stream share: the user Targets are made for is
found by the user model's USERNAME_FIELD (a TOM whose users sign in by email works), and a second signal exits at
once while the first stops cleanly. The command runs on the Pub/Sub emulator and PostgreSQL."""

from __future__ import annotations

import pytest
from tom_targets.models import Target

from tom_pittgoogle.adapters.alertstream import PittGoogleAlertStream
from tom_pittgoogle.core import runner
from tom_pittgoogle.models import Alert

from .test_stream_ingester import candid_of, run_command, subscribe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def users_sign_in_by_email(django_user_model, monkeypatch):
    """The TOM's user model names its users by email (as a custom user model with USERNAME_FIELD = "email")."""
    monkeypatch.setattr(django_user_model, "USERNAME_FIELD", "email")
    alice = django_user_model.objects.create_user("alice-login", email="alice@example.org")
    return alice


def test_a_user_is_found_by_the_user_models_username_field(users_sign_in_by_email):
    assert runner.find_user("alice@example.org") == users_sign_in_by_email
    assert runner.find_user("alice-login") is None  # not the username column: the model's USERNAME_FIELD


def test_the_alert_stream_gives_targets_to_a_user_named_by_email(users_sign_in_by_email, pubsub_emulator):
    stream = PittGoogleAlertStream(STREAMS=[{"subscription": "ztf-loop"}], TARGETS_FOR="alice@example.org")
    assert stream._targets_user == users_sign_in_by_email


def test_the_command_gives_targets_to_a_user_named_by_email(users_sign_in_by_email, topic_name, publish, packets):
    subscribe(topic_name)
    publish(topic_name, packets[:2])
    run_command("--subscription", topic_name, "--timeout", "3", "--create-targets",
                "--targets-for", "alice@example.org")
    targets = Target.objects.all()
    assert targets.count() == len({Alert.objects.get(source_id=candid_of(p)).object_id for p in packets[:2]})
    assert all(users_sign_in_by_email.has_perm("tom_targets.view_target", target) for target in targets)


class FakeIngester:
    def __init__(self) -> None:
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True


def test_the_first_signal_stops_and_a_second_exits_at_once(monkeypatch):
    import signal

    exits = []

    def exit_now(status: int) -> None:
        exits.append(status)
        raise SystemExit(status)

    monkeypatch.setattr(runner.os, "_exit", exit_now)
    ingesters, said = [FakeIngester(), FakeIngester()], []
    handle = runner.stop_on_signal(lambda: ingesters, said.append)
    handle(signal.SIGTERM, None)
    assert all(ingester.stopping for ingester in ingesters) and not exits
    assert said == ["SIGTERM: storing what is in flight, then stopping (again to exit at once)"]
    with pytest.raises(SystemExit):
        handle(signal.SIGINT, None)
    assert exits == [128 + signal.SIGINT]
    assert said[-1] == "SIGINT again: exiting without storing what is in flight"
