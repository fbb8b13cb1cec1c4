from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from dealdesk.deals.models import AuditEntry, StageSetting
from dealdesk.deals.stale import stage_catalogue


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit trail is a record: staff may read it, nobody edits or deletes it here."""

    list_display = ("created_at", "username", "connection_label", "deal_name", "action", "outcome")
    list_filter = ("outcome", "action", "connection_label", "created_at")
    search_fields = ("username", "deal_name", "deal_id", "request_id")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False


class StageSettingForm(forms.ModelForm):
    """Pick the stage by name from every connection's stages; its ids are filled in from it."""

    stage = forms.ChoiceField(
        label="Stage", help_text="Every stage of every enabled connection, in pipeline order."
    )

    class Meta:
        model = StageSetting
        fields = ["stage", "stale_after_days"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.catalogue = stage_catalogue()
        choices = list(self.catalogue.choices)
        if self.instance.pk:
            current = f"{self.instance.connection_slug}|{self.instance.stage_id}"
            if current not in dict(choices):  # its connection is down, or the stage is gone
                label = self.instance.stage_name or self.instance.stage_id
                choices.insert(0, (current, f"{self.instance.connection_slug} · {label}"))
            self.fields["stage"].initial = current
        self.fields["stage"].choices = [("", "Choose a stage…"), *choices]
        if self.catalogue.unreadable:
            self.fields["stage"].help_text += (
                " Not listed right now, because their stages could not be read: "
                + ", ".join(self.catalogue.unreadable)
                + "."
            )

    def clean(self):
        cleaned = super().clean()
        choice = cleaned.get("stage") or ""
        slug, _, stage_id = choice.partition("|")
        if not (slug and stage_id):
            return cleaned
        duplicate = StageSetting.objects.filter(connection_slug=slug, stage_id=stage_id)
        if duplicate.exclude(pk=self.instance.pk).exists():
            self.add_error("stage", "This stage already has a setting: change that one.")
            return cleaned
        self.instance.connection_slug, self.instance.stage_id = slug, stage_id
        self.instance.stage_name = self.catalogue.names.get(choice, self.instance.stage_name)
        return cleaned


@admin.register(StageSetting)
class StageSettingAdmin(admin.ModelAdmin):
    """When an open deal counts as stale, per stage; stages without a row use 14 days."""

    form = StageSettingForm

    list_display = ("connection_slug", "stage_name", "stage_id", "stale_after_days")
    list_editable = ("stale_after_days",)
    list_filter = ("connection_slug",)
    search_fields = ("stage_name", "stage_id")
