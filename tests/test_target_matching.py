"""Alerts find the TOM's Targets by position (within PITTGOOGLE_MATCH_RADIUS_ARCSEC) and by name or alias,
through a HEALPix index of the Targets that saves and deletes keep current."""

from __future__ import annotations

import pytest
from tom_targets.models import Target, TargetList, TargetName

from tom_pittgoogle.core.matching import index_all_targets, match_alerts, separation_arcsec
from tom_pittgoogle.models import TargetPosition

pytestmark = pytest.mark.django_db

ARCSEC = 1 / 3600


def ztf_alert(ra: float, dec: float, object_id: str = "ZTF26aaaaaaa") -> dict:
    return {"survey": "ztf", "object_id": object_id, "source_id": "1", "ra": ra, "dec": dec}


def lsst_alert(ra: float, dec: float, object_id: str = "1234567890123456789") -> dict:
    return {"survey": "lsst", "object_id": object_id, "source_id": "2", "ra": ra, "dec": dec}


def test_an_alert_within_the_radius_matches_and_one_2_arcsec_away_does_not():
    target = Target.objects.create(name="SN 2026abc", type="SIDEREAL", ra=150.0, dec=2.0)
    inside = ztf_alert(150.0 + 1.2 * ARCSEC, 2.0)
    outside = ztf_alert(150.0, 2.0 + 2.0 * ARCSEC)
    assert match_alerts([inside, outside]) == [[target.pk], []]
    assert match_alerts([outside], radius_arcsec=2.5) == [[target.pk]]


def test_matching_across_a_pixel_edge_and_at_ra_zero():
    # Targets just either side of RA 0 and near the pole: the cone reaches into the neighbouring pixels.
    east = Target.objects.create(name="east", type="SIDEREAL", ra=359.9999, dec=-30.0)
    pole = Target.objects.create(name="pole", type="SIDEREAL", ra=10.0, dec=89.9999)
    assert match_alerts([ztf_alert(0.0001, -30.0)]) == [[east.pk]]  # 0.62 arcsec apart, across RA 0
    assert match_alerts([ztf_alert(190.0, 89.9999)]) == [[pole.pk]]  # 0.72 arcsec apart, across the pole
    assert match_alerts([ztf_alert(190.0, 89.9996)]) == [[]]  # 1.8 arcsec apart


def test_the_index_follows_saves_and_deletes():
    target = Target.objects.create(name="moving", type="SIDEREAL", ra=10.0, dec=10.0)
    assert TargetPosition.objects.filter(target_id=target.pk).exists()
    target.ra, target.dec = 20.0, -5.0
    target.save()
    assert match_alerts([ztf_alert(10.0, 10.0), ztf_alert(20.0, -5.0)]) == [[], [target.pk]]
    target.delete()
    assert not TargetPosition.objects.exists()
    assert match_alerts([ztf_alert(20.0, -5.0)]) == [[]]


def test_a_target_without_coordinates_is_not_indexed_but_matches_by_name():
    target = Target.objects.create(name="ZTF26named", type="NON_SIDEREAL")
    assert not TargetPosition.objects.exists()
    assert match_alerts([ztf_alert(1.0, 1.0, "ZTF26named")]) == [[target.pk]]


def test_names_and_aliases_match_both_surveys():
    target = Target.objects.create(name="AT 2026xyz", type="SIDEREAL", ra=50.0, dec=-20.0)
    TargetName.objects.create(target=target, name="ZTF26alias")
    TargetName.objects.create(target=target, name="LSST-99")
    far = (200.0, 40.0)
    assert match_alerts([ztf_alert(*far, "ZTF26alias"), lsst_alert(*far, "99"), lsst_alert(*far, "98")]) == [
        [target.pk], [target.pk], []]


def test_only_the_followed_target_list(settings):
    followed = Target.objects.create(name="followed", type="SIDEREAL", ra=80.0, dec=5.0)
    other = Target.objects.create(name="other", type="SIDEREAL", ra=80.0, dec=5.0 + 0.5 * ARCSEC)
    TargetList.objects.create(name="Tonight").targets.add(followed)
    alert = ztf_alert(80.0, 5.0 + 0.25 * ARCSEC)
    assert match_alerts([alert]) == [sorted([followed.pk, other.pk])]
    assert match_alerts([alert], target_list="Tonight") == [[followed.pk]]
    settings.PITTGOOGLE_FOLLOW_TARGET_LIST = "Tonight"
    assert match_alerts([alert]) == [[followed.pk]]
    with pytest.raises(ValueError, match="no TargetList named 'Nope'"):
        match_alerts([alert], target_list="Nope")


def test_rebuilding_the_index_finds_targets_saved_without_signals():
    Target.objects.bulk_create([Target(name=f"bulk{i}", type="SIDEREAL", ra=30.0 + i, dec=0.0) for i in range(3)])
    assert not TargetPosition.objects.exists()  # bulk_create sends no post_save
    assert index_all_targets() == 3
    assert [len(ids) for ids in match_alerts([ztf_alert(31.0, 0.0)])] == [1]


def index_command() -> str:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("pittgoogle_index_targets", stdout=out)
    return " ".join(out.getvalue().split())


def test_the_index_command_makes_bulk_created_targets_match_and_changes_nothing_the_second_time():
    Target.objects.bulk_create([Target(name=f"bulk{i}", type="SIDEREAL", ra=40.0 + i, dec=-5.0) for i in range(3)]
                               + [Target(name="no place", type="NON_SIDEREAL")])
    saved = Target.objects.create(name="saved", type="SIDEREAL", ra=50.0, dec=-5.0)  # indexed by its signal
    alerts = [ztf_alert(40.0 + i, -5.0 + 0.5 * ARCSEC) for i in range(3)]
    assert match_alerts(alerts) == [[], [], []]  # bulk_create sends no post_save: not in the index

    assert index_command() == "4 Targets with coordinates indexed: 3 added, 0 moved, 0 removed, 1 unchanged."
    bulk = {t.name: t.pk for t in Target.objects.filter(name__startswith="bulk")}
    assert match_alerts(alerts) == [[bulk["bulk0"]], [bulk["bulk1"]], [bulk["bulk2"]]]
    assert index_command() == "4 Targets with coordinates indexed: 0 added, 0 moved, 0 removed, 4 unchanged."

    # Coordinates changed and removed without signals (a queryset update): the index follows.
    Target.objects.filter(name="bulk0").update(ra=60.0)
    Target.objects.filter(name="bulk1").update(ra=None, dec=None)
    assert index_command() == "3 Targets with coordinates indexed: 0 added, 1 moved, 1 removed, 2 unchanged."
    assert match_alerts([*alerts[:2], ztf_alert(60.0, -5.0)]) == [[], [], [bulk["bulk0"]]]
    assert TargetPosition.objects.get(target_id=saved.pk).ra == 50.0


def test_separation_is_exact_at_small_angles():
    from astropy.coordinates import SkyCoord

    a, b = SkyCoord(150.0, 2.0, unit="deg"), SkyCoord(150.0004, 2.0003, unit="deg")
    assert separation_arcsec(150.0, 2.0, 150.0004, 2.0003) == pytest.approx(a.separation(b).arcsec, rel=1e-9)
