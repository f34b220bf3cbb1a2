"""The README's `alert_attached` example, run as written: the owners of a Target get one e-mail per alert newly
attached to it, and none for an alert attached again."""

from __future__ import annotations

import re
import types
from pathlib import Path

import numpy as np
import pytest
from django.core import mail
from tom_targets.models import Target

from tom_pittgoogle.core.alerts import lighten_alert
from tom_pittgoogle.core.attach import alert_attached, attach_found
from tom_pittgoogle.demo.sample_alerts import make_alert

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.django_db


def readme_example() -> str:
    section = README.read_text().split("## Alerts that follow your Targets", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the README's Targets section has one Python example"
    return blocks[0]


@pytest.fixture
def readme_receiver():
    module = types.ModuleType("readme_example")
    exec(compile(readme_example(), "README.md", "exec"), module.__dict__)  # noqa: S102 - the README's own code
    yield module
    alert_attached.disconnect(module.tell_the_owners)


def test_the_readme_example_e_mails_the_targets_owners_once_per_new_alert(
        readme_receiver, django_user_model, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    owner = django_user_model.objects.create_user("owner", email="owner@example.org", password="not-used")
    django_user_model.objects.create_user("stranger", email="stranger@example.org", password="not-used")
    target = Target.objects.create(name="2025abc", type="SIDEREAL", ra=150.0, dec=2.0,
                                   permissions=Target.Permissions.PRIVATE)
    target.give_user_access(owner)
    record = make_alert(np.random.default_rng(5), jd=2461000.5, object_id="ZTF25aaowner")
    record["candidate"]["ra"], record["candidate"]["dec"] = 150.0, 2.0001  # 0.36 arcsec away
    alert = lighten_alert(record)

    with django_capture_on_commit_callbacks(execute=True):
        assert attach_found({"projects/p/subscriptions/ztf-alerts": [alert]}) == 1
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["owner@example.org"]
    assert sent.subject == "New ZTF alert of 2025abc"
    assert f"at JD {alert['jd']}" in sent.body and "ztf-alerts" in sent.body

    with django_capture_on_commit_callbacks(execute=True):  # the same alert again (a redelivery): no e-mail
        assert attach_found({"projects/p/subscriptions/ztf-alerts": [alert]}) == 0
    assert len(mail.outbox) == 1
