"""The stream forms' server-side filter fields: what the message attributes say, named as Pitt-Google names them.

A stream query's filters on attributes become its subscription's Pub/Sub filter
(:func:`tom_pittgoogle.core.filters.server_filter`): Google drops the other messages before delivery. The fields
are added to a form by :func:`with_attribute_fields`; the form's ``clean`` calls :func:`clean_attribute_filters`;
:func:`stream_options` is what a stream consumer is given. Plain Django forms only (see ``query_fields``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from tom_pittgoogle.adapters.query_fields import validate_subscription_name
from tom_pittgoogle.core.attribute_filter import FilterSyntaxError
from tom_pittgoogle.core.filters import ATTRIBUTE_KEYS, UPSILON_BANDS, server_filter

_ANY = ("", "any")
_FLAG_CHOICES = [_ANY, ("1", "yes (1)"), ("0", "no (0)")]

#: The form keys of the server-side filter: the attribute filters and the topic of a subscription of its own.
ATTRIBUTE_FORM_KEYS = (*ATTRIBUTE_KEYS, "topic_name")


def attribute_fields() -> dict[str, forms.Field]:
    """New instances of the fields (add them to a form's ``base_fields``)."""
    return {
        "topic_name": forms.CharField(
            required=False, validators=[validate_subscription_name], label="Topic",
            help_text="The Pitt-Google topic a new subscription attaches to when its name is not the topic's: "
                      "a filter below is fixed when a subscription is created, so a filtered query needs a "
                      "subscription of its own (e.g. subscription lsst-variability-likely, topic lsst-variability)."),
        "pg_supernnova_class": forms.CharField(
            required=False, max_length=32, label="SuperNNova class (pg_supernnova_class)",
            help_text="SuperNNova topics: the predicted class, e.g. 0 or 1. Filters on the message attributes "
                      "(this and those below) are the subscription's Pub/Sub filter: Google drops the other "
                      "messages before delivery."),
        "pg_variable": forms.ChoiceField(
            required=False, choices=[_ANY, ("likely", "likely"), ("unlikely", "unlikely")],
            label="Variable (pg_variable)", help_text="lsst-variability."),
        "pg_upsilon_band": forms.ChoiceField(
            required=False, choices=[_ANY, *((band, band) for band in UPSILON_BANDS)], label="UPSILoN band",
            help_text="lsst-upsilon: the band of the label and flag below."),
        "pg_upsilon_label": forms.CharField(
            required=False, max_length=32, label="UPSILoN label (pg_upsilon_<band>_label)",
            help_text="e.g. RRL_ab, CEPH_F, EB_EC, NonVar."),
        "pg_upsilon_flag": forms.ChoiceField(required=False, choices=_FLAG_CHOICES,
                                             label="UPSILoN flag (pg_upsilon_<band>_flag)"),
        "pg_has_min_detections": forms.ChoiceField(
            required=False, choices=_FLAG_CHOICES, label="Enough points for UPSILoN (pg_has_min_detections)"),
        "n_previous_detections": forms.IntegerField(
            required=False, min_value=0, label="Previous detections (n_previous_detections)",
            help_text="Rubin/LSST: exactly this many (0: objects seen for the first time)."),
        "is_pure": forms.ChoiceField(required=False, choices=_FLAG_CHOICES, label="Pure (is_pure)",
                                     help_text="ztf-tagged."),
        "is_extragalactic_transient": forms.ChoiceField(
            required=False, choices=_FLAG_CHOICES, label="Extragalactic transient (is_extragalactic_transient)",
            help_text="ztf-tagged."),
        "fid": forms.ChoiceField(required=False, choices=[_ANY, ("1", "g (1)"), ("2", "r (2)"), ("3", "i (3)")],
                                 label="Band (fid)", help_text="ztf-tagged."),
        "attribute_filter": forms.CharField(
            required=False, max_length=1024, widget=forms.Textarea(attrs={"rows": 2}),
            label="Pub/Sub filter",
            help_text='A filter of your own in Google\'s language, e.g. attributes.pg_variable = "likely" AND NOT '
                      "attributes:ssSource_ssObjectId (with the fields above: all must hold; at most 256 bytes)."),
    }


def with_attribute_fields(form_class: type[forms.Form]) -> type[forms.Form]:
    """Class decorator: add :func:`attribute_fields` after the form's own fields; its ``clean`` must call
    :func:`clean_attribute_filters`."""
    for name, field in attribute_fields().items():
        form_class.base_fields[name] = form_class.declared_fields[name] = field
    return form_class


#: The attribute fields only one survey's messages carry: on the other survey's stream they would keep nothing.
SURVEY_ATTRIBUTES = {
    "ztf": ("is_pure", "is_extragalactic_transient", "fid"),
    "lsst": ("pg_variable", "pg_upsilon_band", "pg_upsilon_label", "pg_upsilon_flag", "pg_has_min_detections",
             "n_previous_detections"),
}


def clean_attribute_filters(form: forms.Form, cleaned_data: dict) -> dict:
    """A field of the other survey's attributes is a field error; the server-side filter the fields make must be
    one Pub/Sub accepts (its message says what and where)."""
    survey = cleaned_data.get("survey") or "ztf"
    labels = {"ztf": "ZTF", "lsst": "Rubin/LSST"}
    for other, keys in SURVEY_ATTRIBUTES.items():
        if other == survey:
            continue
        for key in keys:
            if cleaned_data.get(key) not in (None, "") and key not in form.errors:
                form.add_error(key, f"Only {labels[other]} messages carry {key}: a {labels.get(survey, survey)} "
                                    "stream's messages never have it, so this filter would keep nothing.")
    try:
        server_filter(cleaned_data)
    except FilterSyntaxError as error:
        form.add_error("attribute_filter" if cleaned_data.get("attribute_filter") else None, str(error))
    except ValueError as error:
        form.add_error(None, str(error))
    return cleaned_data


def stream_options(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """What a stream consumer is given for a query: its topic and its subscription's server-side filter."""
    return {"topic": parameters.get("topic_name") or None, "server_filter": server_filter(parameters)}
