"""What the routes store in the TOM's database."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import F
from django.views.decorators.debug import sensitive_variables

from tom_pittgoogle.core.tokens import decrypt, encrypt, needs_rotation, rotate


class AlertJSONField(models.JSONField):
    """A JSONField stored one value per placeholder in a bulk insert.

    On PostgreSQL, Django 5.2 packs a bulk insert's values into arrays (``UNNEST``); psycopg then escapes a
    ``jsonb[]`` array in Python character by character, which made storing a batch of alerts slower than
    decoding it. A field with ``get_placeholder`` keeps the plain multi-row ``VALUES`` insert.
    """

    def get_placeholder(self, value, compiler, connection) -> str:
        return "%s"


class Alert(models.Model):
    """One alert, stored once however often Pub/Sub delivers it (unique on survey and source id)."""

    survey = models.CharField(max_length=16)
    source_id = models.CharField(max_length=64, help_text="The survey's id of this detection (ZTF candid).")
    object_id = models.CharField(max_length=64, db_index=True, help_text="The survey's object id (ZTF objectId).")
    jd = models.FloatField(null=True, blank=True)
    ra = models.FloatField(null=True, blank=True)
    dec = models.FloatField(null=True, blank=True)
    band = models.CharField(max_length=16, blank=True)
    mag = models.FloatField(null=True, blank=True)
    mag_err = models.FloatField(null=True, blank=True)
    subscription = models.CharField(max_length=255, blank=True, help_text="Where the alert came from.")
    message_id = models.CharField(max_length=128, blank=True)
    alert = AlertJSONField(help_text="The lightened alert: common fields plus the survey's kept fields.")
    attributes = models.JSONField(default=dict, blank=True, help_text="The Pub/Sub attributes of its message.")
    stored_at = models.DateTimeField(auto_now_add=True)
    # Copied from the alert when it is stored (tom_pittgoogle.core.alert_columns.indexed_columns), so that the stored
    # route sorts and filters on indexed columns rather than reading every row's JSON.
    best_score = models.FloatField(
        null=True, blank=True,
        help_text="The highest classifier probability, else the survey's real/bogus score (ZTF drb, LSST reliability).",
    )
    classes = models.TextField(blank=True, help_text="Every classifier's predicted class, case-folded, as |a|b|.")
    # How late the alert reached the TOM, in three legs (tom_pittgoogle.core.latency); None where a time is unknown.
    published_at = models.DateTimeField(
        null=True, blank=True, help_text="When Pitt-Google published its message on Pub/Sub (none for BigQuery rows).",
    )
    committed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the transaction that stored it from Pub/Sub committed.",
    )
    exposure_to_survey = models.FloatField(
        null=True, blank=True, help_text="Seconds from the exposure to the survey's publication (Kafka timestamp).",
    )
    survey_to_broker = models.FloatField(
        null=True, blank=True, help_text="Seconds from the survey's publication to Pitt-Google's Pub/Sub publication.",
    )
    broker_to_tom = models.FloatField(
        null=True, blank=True, help_text="Seconds from Pitt-Google's Pub/Sub publication to the commit in this TOM.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["survey", "source_id"], name="tom_pittgoogle_alert_unique_source"),
        ]
        indexes = [
            # The stored route's sorts (tom_pittgoogle.routes.stored_alerts.SORTS), nulls last, ties broken by id.
            models.Index(F("jd").desc(nulls_last=True), F("id").desc(), name="tom_pittgoogle_alert_newest"),
            models.Index(F("mag").asc(nulls_last=True), F("id").desc(), name="tom_pittgoogle_alert_brightest"),
            models.Index(F("best_score").desc(nulls_last=True), F("id").desc(), name="tom_pittgoogle_alert_best"),
            models.Index(fields=["dec"], name="tom_pittgoogle_alert_dec"),
            models.Index(fields=["stored_at"], name="tom_pittgoogle_alert_stored_at"),
            # The latency's windows (an index of Meta, not db_index: SQLite drops such a column without remaking).
            models.Index(fields=["committed_at"], name="tom_pittgoogle_alert_committed"),
        ]
        ordering = ["-jd"]

    def __str__(self) -> str:
        return f"{self.survey} {self.object_id} {self.source_id}"


class TargetPosition(models.Model):
    """Where a TOM Target is on the sky, as a HEALPix pixel: the index that finds a Target near an alert.

    One row per Target with coordinates, kept current by receivers of the Target's ``post_save`` and
    ``post_delete`` (:mod:`tom_pittgoogle.core.matching`), so that matching an alert asks for a few pixels instead
    of reading every Target.
    """

    target = models.OneToOneField("tom_targets.BaseTarget", on_delete=models.CASCADE, primary_key=True,
                                  related_name="pittgoogle_position")
    pixel = models.BigIntegerField(db_index=True, help_text="Nested HEALPix pixel of the Target's position.")
    ra = models.FloatField()
    dec = models.FloatField()

    def __str__(self) -> str:
        return f"{self.target_id} at pixel {self.pixel}"


class AttachedAlert(models.Model):
    """An alert attached to a followed Target (:mod:`tom_pittgoogle.core.attach`): once, however often it comes.

    Unique on (Target, survey, source id), so that a redelivered alert, or one two ingesters attach at the same
    moment, is attached once: one set of points, one alias, one ``alert_attached`` signal.
    """

    target = models.ForeignKey("tom_targets.BaseTarget", on_delete=models.CASCADE,
                               related_name="pittgoogle_alerts")
    survey = models.CharField(max_length=16)
    source_id = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    route = models.CharField(max_length=255, blank=True, help_text="The subscription or table it came from.")
    attached_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["target", "survey", "source_id"],
                                               name="tom_pittgoogle_attached_once")]

    def __str__(self) -> str:
        return f"{self.survey} {self.object_id} {self.source_id} on {self.target_id}"


class RejectedMessage(models.Model):
    """A message that could not be stored as an alert: kept for the operator, then acknowledged.

    Only the first ``PITTGOOGLE_REJECTED_MAX_BYTES`` bytes are kept, with the original size and checksum;
    ``tom_pittgoogle.core.prune.prune_rejected`` deletes those older than ``PITTGOOGLE_REJECTED_RETENTION_DAYS``.
    """

    subscription = models.CharField(max_length=255, blank=True)
    message_id = models.CharField(max_length=128, blank=True)
    data = models.BinaryField(help_text="The message's raw bytes (the first PITTGOOGLE_REJECTED_MAX_BYTES).")
    size = models.PositiveBigIntegerField(null=True, blank=True, help_text="The message's size in bytes.")
    sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the whole message, hex.")
    attributes = models.JSONField(default=dict, blank=True)
    reason = models.TextField(help_text="Why it was not stored (at most 2,000 characters).")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    @property
    def truncated(self) -> bool:
        return self.size is not None and self.size > len(self.data or b"")

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.subscription} {self.message_id}: {self.reason[:60]}"


class IngesterHeartbeat(models.Model):
    """One run of an ingester (``pittgoogle_stream`` or the alert stream): what it does, written as it runs.

    Written at its start, at each progress report and at its end; a row whose ``last_heartbeat`` is older than
    ``PITTGOOGLE_HEARTBEAT_LATE_SECONDS`` while ``stopped_at`` is empty belongs to an ingester that died or hangs.
    """

    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    kind = models.CharField(max_length=32, default="pittgoogle_stream", help_text="Which command or alert stream.")
    streams = models.JSONField(default=list, help_text="The subscriptions it listens to.")
    subscription_filters = models.JSONField(
        default=dict, blank=True, help_text="Each subscription's server-side filter (Pub/Sub's), by subscription."
    )
    progress_interval = models.FloatField(help_text="Seconds between its heartbeats.")
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField(db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="Empty while it runs.")
    last_received_at = models.DateTimeField(null=True, blank=True)
    last_stored_at = models.DateTimeField(null=True, blank=True)
    rate = models.FloatField(default=0.0, help_text="Alerts stored per second since the run started.")
    backlog = models.IntegerField(default=0, help_text="Alerts received and waiting to be stored.")
    received = models.BigIntegerField(default=0)
    stored = models.BigIntegerField(default=0)
    duplicates = models.BigIntegerField(default=0)
    filtered_out = models.BigIntegerField(default=0, help_text="Alerts the TOM's filter dropped.")
    filtered_out_server = models.BigIntegerField(
        default=0, help_text="Messages the subscription's filter drops (on Google they are never delivered)."
    )
    rejected = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True)
    latency = models.JSONField(
        default=list, blank=True,
        help_text="Per stream over the last hour and over the night: alerts, alerts per minute, p50/p95/p99 of "
                  "each latency leg.",
    )

    class Meta:
        ordering = ["-last_heartbeat"]

    def __str__(self) -> str:
        return f"{self.kind} pid {self.pid} on {self.host}"


class BacklogSample(models.Model):
    """An ingester's backlog at one heartbeat, for the status page's plot over the night.

    A heartbeat writes one when the backlog changed or the last is a minute old; samples older than two days go
    (the ingester trims its own, ``pittgoogle_prune`` every ingester's), and with their heartbeat row.
    """

    # Indexed by (heartbeat, at) below, which serves the foreign key's lookups too.
    heartbeat = models.ForeignKey(IngesterHeartbeat, on_delete=models.CASCADE, related_name="backlog_samples",
                                  db_index=False)
    at = models.DateTimeField()
    backlog = models.IntegerField(help_text="Alerts received and waiting to be stored.")

    class Meta:
        indexes = [
            models.Index(fields=["at"], name="tom_pittgoogle_backlog_at"),
            models.Index(fields=["heartbeat", "at"], name="tom_pittgoogle_backlog_run_at"),
        ]
        ordering = ["heartbeat", "at"]

    def __str__(self) -> str:
        return f"{self.heartbeat_id} {self.at:%Y-%m-%d %H:%M:%S}: {self.backlog}"


class GoogleConnection(models.Model):
    """A TOM user's own Google account, connected through the OAuth sign-in: one per user, never shared.

    The tokens are stored encrypted (see :mod:`tom_pittgoogle.core.tokens`) and are read and written only
    through :attr:`access_token` and :attr:`refresh_token`; ``str`` and ``repr`` never show them.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pittgoogle_google_connection"
    )
    email = models.CharField(max_length=320, blank=True, help_text="The Google account, as Google reported it.")
    scopes = models.TextField(blank=True, help_text="The scopes Google granted, space-separated.")
    access_token_encrypted = models.TextField(blank=True)
    refresh_token_encrypted = models.TextField()
    expiry = models.DateTimeField(null=True, blank=True, help_text="When the current access token expires.")
    broken = models.BooleanField(
        default=False, help_text="Google refused the refresh token (revoked or expired): the user must reconnect."
    )
    broken_reason = models.CharField(max_length=200, blank=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Google connection"

    def __str__(self) -> str:
        state = "broken" if self.broken else "connected"
        return f"{self.user_id and self.user.get_username()}: {self.email or 'Google account'} ({state})"

    def __repr__(self) -> str:
        return f"<GoogleConnection user_id={self.user_id} email={self.email!r} broken={self.broken}>"

    @property
    @sensitive_variables()
    def access_token(self) -> str:
        return decrypt(self.access_token_encrypted)

    @access_token.setter
    @sensitive_variables()
    def access_token(self, value: str) -> None:
        self.access_token_encrypted = encrypt(value or "")

    @property
    @sensitive_variables()
    def refresh_token(self) -> str:
        return decrypt(self.refresh_token_encrypted)

    @refresh_token.setter
    @sensitive_variables()
    def refresh_token(self, value: str) -> None:
        self.refresh_token_encrypted = encrypt(value or "")

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    @sensitive_variables()
    def store_tokens(self, access_token: str, expiry: datetime | None, refresh_token: str | None = None) -> None:
        """Set new tokens (a refresh token only if Google sent a new one) and clear any broken state."""
        self.access_token = access_token
        self.expiry = expiry
        if refresh_token:
            self.refresh_token = refresh_token
        self.broken = False
        self.broken_reason = ""

    def tokens_need_reencryption(self) -> bool:
        """True if a token is encrypted with a key other than the first of ``PITTGOOGLE_TOKEN_ENCRYPTION_KEY``."""
        return needs_rotation(self.access_token_encrypted) or needs_rotation(self.refresh_token_encrypted)

    def reencrypt_tokens(self) -> None:
        """Encrypt both tokens under the first key (raises ``InvalidToken`` if no key opens one); not saved."""
        self.access_token_encrypted = rotate(self.access_token_encrypted)
        self.refresh_token_encrypted = rotate(self.refresh_token_encrypted)
