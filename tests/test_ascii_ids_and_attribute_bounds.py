"""Ids are the survey's format in ASCII digits only, and message attributes are stored bounded.

An id in other Unicode digits (Arabic-Indic, fullwidth...) would be a second spelling of the same detection and pass
the database's unique keys, or become a Target name. Attributes are metadata beside the alert: they are kept, cut to
the ``PITTGOOGLE_ATTRIBUTES_*`` settings with a marker, on a stored alert and on a rejected message alike.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tom_pittgoogle.core.alerts import decode_alert, lighten_alert, validate
from tom_pittgoogle.core.store import DjangoAlertStore, RawMessage
from tom_pittgoogle.exceptions import ConfigurationError, DecodeError
from tom_pittgoogle.models import Alert, RejectedMessage

from .conftest import SAMPLE_PACKETS
from .test_dataservice import form_fields

pytestmark = pytest.mark.django_db

NON_ASCII_DIGITS = ["\u0661\u0668", "\uff11\uff18", "\u09e7\u09ee", "1\u0668"]  # Arabic-Indic, fullwidth, Bengali


@pytest.mark.parametrize("digits", NON_ASCII_DIGITS)
def test_ids_in_other_unicode_digits_are_refused(digits):
    with pytest.raises(DecodeError, match="not a ZTF object id"):
        validate.object_id("ztf", f"ZTF{digits}abcdefg")
    with pytest.raises(DecodeError, match="not a positive 64-bit integer"):
        validate.source_id("lsst", f"170000000100000{digits}")
    with pytest.raises(DecodeError, match="not a positive 64-bit integer"):
        validate.object_id("lsst", f"{digits}00")
    assert not validate.is_decimal_id(f"12{digits}")
    assert validate.object_id("ztf", "ZTF18abfkwnk") == "ZTF18abfkwnk"
    assert validate.is_decimal_id("1700000001000000111")


def test_a_target_name_in_other_digits_is_not_an_lsst_object():
    from tom_targets.models import Target

    from tom_pittgoogle.core.targets import survey_and_object_id

    ascii_target = Target.objects.create(name="LSST-170000000100", type="SIDEREAL", ra=1, dec=2)
    other = Target.objects.create(name="LSST-\u0661\u0667\u0660", type="SIDEREAL", ra=1, dec=2)
    assert survey_and_object_id(ascii_target) == ("lsst", "170000000100")
    assert survey_and_object_id(other) is None


def test_the_search_form_refuses_an_lsst_object_id_in_other_digits(astronomer):  # noqa: F811
    response = astronomer.post(reverse("dataservices:create"),
                               form_fields(survey="lsst", objectId="\u0661\u0662\u0663"))
    assert response.status_code == 200
    assert "is a number" in str(response.context["form"].errors["objectId"])


# --- attributes ---------------------------------------------------------------------------------------------


def test_attributes_are_cut_to_the_settings_with_a_marker(settings):
    settings.PITTGOOGLE_ATTRIBUTES_MAX_COUNT = 4
    settings.PITTGOOGLE_ATTRIBUTES_MAX_KEY_CHARS = 8
    settings.PITTGOOGLE_ATTRIBUTES_MAX_VALUE_CHARS = 10
    limits = validate.AttributeLimits.from_settings()
    kept = validate.attributes({"b": "x" * 1_000_000, "a": "short", "k" * 50: "v", "z": "1", "nul": "a\x00b"}, limits)
    assert kept == {"a": "short", "b": "x" * 9 + "\u2026", "kkkkkkk\u2026": "v", "\u2026": "2 attributes not kept"}


def test_a_stored_alert_and_a_rejected_message_keep_bounded_attributes(settings):
    packet = SAMPLE_PACKETS[0][1]
    alert = lighten_alert(decode_alert(packet))
    huge = {"id": "here", "big": "y" * 1_000_000, **{f"k{i:03d}": str(i) for i in range(150)}}
    store = DjangoAlertStore()
    store.save_messages([alert], [RawMessage("m1", packet, huge)], subscription="s")
    store.record_rejected([(RawMessage("m2", b"bad", huge), "a reason")], subscription="s")
    for attributes in (Alert.objects.get(message_id="m1").attributes,
                       RejectedMessage.objects.get(message_id="m2").attributes):
        assert len(attributes) == 100 and attributes["\u2026"] == f"{len(huge) - 99} attributes not kept"
        assert len(attributes["big"]) == 1024 and attributes["big"].endswith("\u2026")
        assert attributes["id"] == "here"  # kept in key order: the first 99
    settings.PITTGOOGLE_ATTRIBUTES_MAX_VALUE_CHARS = 20
    store.record_rejected([(RawMessage("m3", b"bad", huge), "a reason")], subscription="s")
    assert len(RejectedMessage.objects.get(message_id="m3").attributes["big"]) == 20


def test_an_attribute_setting_that_is_not_a_positive_number_is_a_configuration_error(settings):
    settings.PITTGOOGLE_ATTRIBUTES_MAX_COUNT = "many"
    with pytest.raises(ConfigurationError, match="PITTGOOGLE_ATTRIBUTES_MAX_COUNT"):
        DjangoAlertStore().record_rejected([(RawMessage("m", b"x", {"a": "b"}), "why")])
