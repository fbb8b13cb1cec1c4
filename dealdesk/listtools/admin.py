"""Who each user is in each source ("My deals"): an inline on the user's admin page, with the
owner picked by name from the connections' synced staff."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError

from dealdesk.connections.models import Connection
from dealdesk.connections.services import connection_list
from dealdesk.listtools.models import OwnerLink
from dealdesk.listtools.selectors import staff_choices


class OwnerLinkForm(forms.ModelForm):
    """Pick the owner by name from a source's synced staff (``<connection pk>:<owner id>``,
    grouped by source), or, for a source with no staff list, choose it and type the owner id."""

    owner = forms.ChoiceField(
        label="Owner",
        required=False,
        help_text="The staff member this user is in that source, from its last sync.",
    )
    connection = forms.ModelChoiceField(
        queryset=Connection.objects.filter(enabled=True),
        required=False,
        label="Or: source",
        help_text="For a source without a staff list …",
    )
    typed_owner_id = forms.CharField(label="… and its owner id", required=False, max_length=100)

    class Meta:
        model = OwnerLink
        fields: list[str] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.names: dict[str, str] = {}
        groups: list[tuple[str, list[tuple[str, str]]]] = []
        for connection in connection_list(enabled_only=True):
            choices = []
            for owner_id, name in staff_choices(connection):
                value = f"{connection.pk}:{owner_id}"
                choices.append((value, name))
                self.names[value] = name
            if choices:
                groups.append((connection.label, choices))
        if self.instance.pk:
            current = f"{self.instance.connection_id}:{self.instance.owner_id}"
            if current in self.names:
                self.fields["owner"].initial = current
            else:  # a typed id, or no longer in the staff list
                self.fields["connection"].initial = self.instance.connection_id
                self.fields["typed_owner_id"].initial = self.instance.owner_id
        self.fields["owner"].choices = [("", "—"), *groups]

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if cleaned.get("DELETE"):
            return cleaned
        choice = cleaned.get("owner") or ""
        connection = cleaned.get("connection")
        typed = (cleaned.get("typed_owner_id") or "").strip()
        if choice:
            connection_pk, _, owner_id = choice.partition(":")
            self.instance.connection_id = int(connection_pk)
            self.instance.owner_id = owner_id
            self.instance.owner_name = self.names.get(choice, "")
        elif connection is not None and typed:
            self.instance.connection = connection
            self.instance.owner_id = typed
            self.instance.owner_name = ""
        elif connection is not None or typed:
            raise ValidationError("Choose the source and type its owner id, or pick an owner.")
        elif not self.instance.pk:
            raise ValidationError("Pick an owner, or a source and its owner id.")
        return cleaned


class OwnerLinkFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        seen: set[int] = set()
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            connection_id = form.instance.connection_id
            if connection_id in seen:
                raise ValidationError("Link the user to one owner per source.")
            seen.add(connection_id)


class OwnerLinkInline(admin.TabularInline):
    model = OwnerLink
    form = OwnerLinkForm
    formset = OwnerLinkFormSet
    extra = 1
    verbose_name = "deal owner in a source"
    verbose_name_plural = "Deal owner in each source (for “My deals”)"


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserWithOwnersAdmin(UserAdmin):
    """Django's user admin, plus who the user is in each source."""

    inlines = [*UserAdmin.inlines, OwnerLinkInline]
