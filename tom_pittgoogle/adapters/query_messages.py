"""What a query says to its user: what an empty result means, and a failure as plain text (commands) or HTML
(pages)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.utils.html import escape, format_html

from tom_pittgoogle import conf
from tom_pittgoogle.adapters.query_subscriptions import subscription_and_survey
from tom_pittgoogle.core.alerts import SURVEY_CHOICES
from tom_pittgoogle.core.filters import CLASSTAR_COMPARISONS, LESS_THAN

#: The two kinds of query, for :func:`nothing_matched`.
SEARCH, PULL = "search", "pull"


def nothing_matched(parameters: Mapping[str, Any], kind: str) -> str:
    """What an empty result means: what was searched, and why a pull may come back empty."""
    survey = parameters.get("survey") or "ztf"
    survey_label = dict(SURVEY_CHOICES).get(survey, survey)
    if kind == SEARCH:
        object_id = (parameters.get("objectId") or "").strip()
        candid = parameters.get("candid")
        if object_id:
            what = f"alerts of object {object_id}"
        elif candid not in (None, ""):
            what = f"the alert with source id (candid) {candid}"
        else:
            what = "the newest alerts"
        return f"Nothing matched: {_tables_text(parameters, survey)} ({survey_label}) has no {what}."
    subscription, _ = subscription_and_survey(parameters)
    timeout = parameters.get("timeout")
    waited = f"; the query stops after {float(timeout):g} s without a new message" if timeout not in (None, "") else ""
    deadline = conf.web_query_deadline()
    if deadline is not None:
        waited += f". On a page a query also stops after {deadline:g} s in all, whatever the stream delivers"
    return (
        f"Nothing matched: no alert{_filter_text(parameters, survey)} came from subscription {subscription} "
        f"({survey_label}){waited}. A subscription receives only the alerts published after it was created, and "
        "each alert goes to one pull: a new subscription, or one that another query has just read, stays empty "
        "until new alerts are published. Run the query again later."
    )


def _tables_text(parameters: Mapping[str, Any], survey: str) -> str:
    """Which BigQuery tables a search read: the one named, the ones listed in settings, or every alerts table."""
    named = parameters.get("table_name") or conf.survey_table(survey)
    if named:
        return f"BigQuery table {named if '.' in named else conf.survey_dataset(survey) + '.' + named}"
    listed = conf.survey_tables(survey)
    if listed:
        return f"BigQuery tables {', '.join(listed)}"
    return f"every alerts table of BigQuery dataset {conf.survey_dataset(survey)}"


def _filter_text(parameters: Mapping[str, Any], survey: str) -> str:
    if survey == "ztf" and parameters.get("classtar_threshold") not in (None, ""):
        comparison = dict(CLASSTAR_COMPARISONS).get(parameters.get("classtar_gt_lt") or LESS_THAN)
        return f" with classtar {comparison} {parameters['classtar_threshold']}"
    if survey == "lsst" and parameters.get("reliability_threshold") not in (None, ""):
        return f" with reliability of at least {parameters['reliability_threshold']}"
    return ""


class UserFacingError(Exception):
    """Base of an error that TOM Toolkit shows: plain text on the command line, HTML on a page.

    TOM Toolkit's results pages render the text of the error as HTML, and its commands print the same text;
    the text is made when it is shown (``str()``), so each place gets its own form: on a page the message is
    escaped and the URL it quotes (``link``) becomes a link.
    """

    def __init__(self, message: str, link: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.link = link

    def __str__(self) -> str:
        return error_html(self.message, self.link) if conf.in_web_request() else self.message


def report_failure(log: logging.Logger, source: str, error: Exception) -> None:
    """Log a failed query for the server's log; a command shows the error once, itself, so it is not logged there."""
    log.log(logging.WARNING if conf.in_web_request() else logging.DEBUG, "%s query failed: %s", source, error)


def error_html(message: str, link: str | None = None) -> str:
    """A failure's message for a TOM page that renders it as HTML: escaped, the URL it quotes made a link."""
    text = str(escape(message))
    if link:
        text = text.replace(str(escape(link)), str(format_html('<a href="{}">{}</a>', link, link)))
    return text
