from django.contrib import admin

from tom_pittgoogle.models import Alert, GoogleConnection, IngesterHeartbeat, RejectedMessage


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("object_id", "source_id", "survey", "jd", "band", "mag", "best_score", "subscription", "stored_at")
    list_filter = ("survey", "band", "subscription")
    search_fields = ("object_id", "source_id")


@admin.register(RejectedMessage)
class RejectedMessageAdmin(admin.ModelAdmin):
    """What could not be stored, and why; kept ``PITTGOOGLE_REJECTED_RETENTION_DAYS`` (see ``prune_rejected``)."""

    list_display = ("message_id", "subscription", "reason", "size", "received_at")
    list_filter = ("subscription",)
    search_fields = ("message_id", "reason", "sha256")
    readonly_fields = ("subscription", "message_id", "reason", "size", "sha256", "truncated", "attributes",
                       "data", "received_at")

    @admin.display(boolean=True, description="only the first bytes kept")
    def truncated(self, obj: RejectedMessage) -> bool:
        return obj.truncated


@admin.register(IngesterHeartbeat)
class IngesterHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("kind", "host", "pid", "started_at", "last_heartbeat", "stopped_at", "stored", "rejected")
    list_filter = ("kind", "host")


@admin.register(GoogleConnection)
class GoogleConnectionAdmin(admin.ModelAdmin):
    """Who is connected, never the tokens: an administrator can delete a connection, not read it."""

    list_display = ("user", "email", "broken", "expiry", "connected_at", "updated_at")
    list_filter = ("broken",)
    search_fields = ("user__username", "email")
    fields = ("user", "email", "scopes", "broken", "broken_reason", "expiry", "connected_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # only the user's own sign-in creates one
