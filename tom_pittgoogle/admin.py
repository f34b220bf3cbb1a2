from django.contrib import admin

from .models import Alert, RejectedMessage


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("object_id", "source_id", "survey", "jd", "band", "mag", "subscription", "stored_at")
    list_filter = ("survey", "band", "subscription")
    search_fields = ("object_id", "source_id")


@admin.register(RejectedMessage)
class RejectedMessageAdmin(admin.ModelAdmin):
    list_display = ("message_id", "subscription", "reason", "received_at")
    list_filter = ("subscription",)
    readonly_fields = ("subscription", "message_id", "data", "attributes", "reason", "received_at")
