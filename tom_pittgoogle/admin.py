from django.contrib import admin

from tom_pittgoogle.models import (
    Alert,
    AttachedAlert,
    GoogleConnection,
    IngesterHeartbeat,
    RejectedMessage,
    TargetPosition,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """A list to look at: the rows are written by the ingesters and the Target index, never by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


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


@admin.register(AttachedAlert)
class AttachedAlertAdmin(ReadOnlyAdmin):
    """Which alerts reached which Target, from where (deleting one lets the alert be attached again)."""

    list_display = ("target", "survey", "object_id", "source_id", "route", "attached_at")
    list_filter = ("survey", "route", "attached_at")
    search_fields = ("target__name", "object_id", "source_id", "route")
    list_select_related = ("target",)
    date_hierarchy = "attached_at"


@admin.register(TargetPosition)
class TargetPositionAdmin(ReadOnlyAdmin):
    """The HEALPix index of the Targets' positions (``manage.py pittgoogle_index_targets`` rebuilds it)."""

    list_display = ("target", "ra", "dec", "pixel")
    search_fields = ("target__name", "=pixel")
    list_select_related = ("target",)
