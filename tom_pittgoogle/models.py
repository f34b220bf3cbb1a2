"""What the routes store in the TOM's database."""

from __future__ import annotations

from django.db import models


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
    alert = models.JSONField(help_text="The lightened alert: common fields plus the survey's kept fields.")
    stored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["survey", "source_id"], name="tom_pittgoogle_alert_unique_source"),
        ]
        ordering = ["-jd"]

    def __str__(self) -> str:
        return f"{self.survey} {self.object_id} {self.source_id}"


class RejectedMessage(models.Model):
    """A message that could not be read as an alert: kept for the operator, then acknowledged."""

    subscription = models.CharField(max_length=255, blank=True)
    message_id = models.CharField(max_length=128, blank=True)
    data = models.BinaryField(help_text="The message's raw bytes.")
    attributes = models.JSONField(default=dict, blank=True)
    reason = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.subscription} {self.message_id}: {self.reason[:60]}"
