"""The Pitt-Google parts of TOM Toolkit's Target page: the "Pitt-Google" tab and the *Fetch Pitt-Google history*
button (``TomPittGoogleConfig.target_detail_tabs`` and ``target_detail_buttons`` name these context functions).

TOM Toolkit calls each with the Target page's template context and merges what it returns into that context
(``tom_targets.templatetags.targets_extras``), so each returns one key of its own. Both check the user's permission
on the Target themselves (TOM Toolkit's guardian rules, ``tom_targets.permissions.targets_for_user``): the page
checks it too, but a TOM may include the tab elsewhere, and the alerts of a private Target never reach a user who
may not see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django import template
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, Subquery
from django.urls import NoReverseMatch, reverse

from tom_pittgoogle import conf
from tom_pittgoogle.core.filters import jd_to_datetime

register = template.Library()

#: Attached alerts shown on one page of the tab.
ALERTS_PER_PAGE = 25
#: The query parameter of the tab's page number, and the tab's id (TOM Toolkit slugifies the label).
PAGE_PARAMETER = "pittgoogle_page"
TAB_LABEL = "Pitt-Google"
TAB_ID = "pitt-google"
MJD_TO_JD = 2400000.5


@dataclass
class AttachedRow:
    """One attached alert as the tab shows it; the stored alert's fields are None when it is not in the store."""

    survey: str
    object_id: str
    source_id: str
    route: str
    attached_at: datetime
    url: str = ""
    stored: bool = False
    jd: float | None = None
    time: datetime | None = None
    band: str = ""
    mag: float | None = None
    mag_err: float | None = None
    flux: float | None = None
    flux_err: float | None = None
    classifiers: dict[str, dict] = field(default_factory=dict)

    @property
    def mjd(self) -> float | None:
        return None if self.jd is None else self.jd - MJD_TO_JD

    @property
    def iso_time(self) -> str:
        return self.time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if self.time is not None else ""


def page_target(context: Any) -> Any:
    """The Target of the page: TOM Toolkit's detail view puts it in the context as ``target`` and ``object``."""
    return context.get("target") or context.get("object")


def user_may(user: Any, target: Any, action: str) -> bool:
    """Whether ``user`` may ``action`` (``view_target``, ``change_target``) ``target``, by TOM Toolkit's rules."""
    from tom_targets.models import Target
    from tom_targets.permissions import targets_for_user

    if user is None or target is None or getattr(target, "pk", None) is None:
        return False
    return targets_for_user(user, Target.objects.filter(pk=target.pk), action).exists()


def attached_alerts(target: Any):
    """The Target's attached alerts, newest first by the alert's time (alerts not in the store last)."""
    from tom_pittgoogle.models import Alert, AttachedAlert

    stored = Alert.objects.filter(survey=OuterRef("survey"), source_id=OuterRef("source_id")).order_by()
    return (AttachedAlert.objects.filter(target_id=target.pk)
            .annotate(alert_jd=Subquery(stored.values("jd")[:1]), alert_pk=Subquery(stored.values("pk")[:1]))
            .order_by(F("alert_jd").desc(nulls_last=True), "-attached_at", "-pk"))


def rows_of(attached: list) -> list[AttachedRow]:
    """The tab's rows of a page of attached alerts (the stored alerts read in one query)."""
    from tom_pittgoogle.models import Alert

    stored = Alert.objects.in_bulk([a.alert_pk for a in attached if a.alert_pk is not None])
    rows = []
    for one in attached:
        row = AttachedRow(survey=one.survey, object_id=one.object_id, source_id=one.source_id, route=one.route,
                          attached_at=one.attached_at, url=conf.object_url(one.survey, one.object_id))
        alert = stored.get(one.alert_pk)
        if alert is not None:
            body = alert.alert if isinstance(alert.alert, dict) else {}
            classifiers = body.get("classifiers")
            row.stored = True
            row.jd, row.time, row.band = alert.jd, jd_to_datetime(alert.jd), alert.band
            row.mag, row.mag_err = alert.mag, alert.mag_err
            row.flux, row.flux_err = _number(body.get("flux")), _number(body.get("flux_err"))
            row.classifiers = classifiers if isinstance(classifiers, dict) else {}
            row.route = row.route or alert.subscription
        rows.append(row)
    return rows


def survey_counts(target: Any) -> list[tuple[str, int]]:
    """How many alerts of each survey are attached to the Target: ``[("LSST", 2), ("ZTF", 10)]``."""
    from django.db.models import Count

    from tom_pittgoogle.models import AttachedAlert

    counts = (AttachedAlert.objects.filter(target_id=target.pk).order_by("survey").values("survey")
              .annotate(n=Count("pk")).values_list("survey", "n"))
    return [(survey.upper(), n) for survey, n in counts]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def target_alerts_tab(context: Any) -> dict[str, Any]:
    """The tab's context: a page of the Target's attached alerts, for a user who may see the Target."""
    target = page_target(context)
    request = context.get("request")
    # TOM Toolkit asks for every tab's context twice per page (its links, then its panes): read the rows once.
    made = getattr(request, "_pittgoogle_alerts_tab", None)
    if made is not None and made[0] == getattr(target, "pk", None):
        return made[1]
    tab = _alerts_tab(target, request)
    if request is not None:
        request._pittgoogle_alerts_tab = (getattr(target, "pk", None), tab)
    return tab


def _alerts_tab(target: Any, request: Any) -> dict[str, Any]:
    if not user_may(getattr(request, "user", None), target, "view_target"):
        return {"pittgoogle_alerts": {"allowed": False}}
    paginator = Paginator(attached_alerts(target), ALERTS_PER_PAGE)
    page = paginator.get_page(request.GET.get(PAGE_PARAMETER) if request is not None else None)
    return {"pittgoogle_alerts": {
        "allowed": True,
        "target": target,
        "rows": rows_of(list(page.object_list)),
        "page": page,
        "total": paginator.count,
        "by_survey": survey_counts(target) if paginator.count else [],
        "page_parameter": PAGE_PARAMETER,
        "tab": TAB_ID,
    }}


def history_button(context: Any) -> dict[str, Any]:
    """The button's context: where it posts, for a user who may change the Target (nothing for others, and
    nothing in a TOM that does not include this app's pages)."""
    target = page_target(context)
    user = getattr(context.get("request"), "user", None)
    # TOM Toolkit lets anyone change an OPEN Target; a search uses credentials, so only for a logged-in user.
    if not (getattr(user, "is_authenticated", False) and user_may(user, target, "change_target")):
        return {"pittgoogle_history_url": ""}
    try:
        url = reverse("tom_pittgoogle:target-history", kwargs={"pk": target.pk})
    except NoReverseMatch:
        url = ""
    return {"pittgoogle_history_url": url}
