"""A Target's light curve as its page draws it (TOM Toolkit's photometry plot)."""

from __future__ import annotations

import json

from django.urls import reverse
from tom_dataproducts.models import PhotometryReducedDatum


def plot_of(client, target) -> str:
    page = client.get(reverse("targets:detail", kwargs={"pk": target.pk}))
    assert page.status_code == 200
    return page.content.decode()


def assert_plot_shows(html: str, target) -> None:
    """Every stored point's magnitude or limit is in the plot's data, per band series."""
    datums = PhotometryReducedDatum.objects.filter(target=target)
    assert datums.exists()
    for datum in datums:
        value = datum.brightness if datum.brightness is not None else datum.limit
        assert json.dumps(value) in html, (datum.bandpass, value)
    for band in set(datums.values_list("bandpass", flat=True)):
        assert f'"name":"{band}"' in html or f'"name":"{band} non-detection"' in html
