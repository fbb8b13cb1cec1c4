"""Who each user is in each source ("My deals"): an inline on the user's admin page, with the
owner picked by name from the connections' synced staff."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError

from dealdesk.connections.services import connection_list
from dealdesk.listtools.models import OwnerLink
from dealdesk.listtools.selectors import staff_choices


class OwnerLinkForm(forms.ModelForm):
    """One select of every source's staff (``<connection pk>:<owner id>``), grouped by source;
    the connection and owner id are filled in from the choice."""

    owner = forms.ChoiceField(
        label="Owner",
        help_text="The staff member (or owner) this user is in that source, from its last sync.",
    )

    class Meta:
        model = OwnerLink
        fields = ["owner"]

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
            if current not in self.names:  # no longer in the staff list: keep it selectable
                label = self.instance.owner_name or self.instance.owner_id
                groups.insert(0, ("Current", [(current, label)]))
                self.names[current] = self.instance.owner_name
            self.fields["owner"].initial = current
        self.fields["owner"].choices = [("", "Choose an owner…"), *groups]

    def clean_owner(self) -> str:
        value = self.cleaned_data["owner"]
        connection_pk, _, owner_id = value.partition(":")
        if not (connection_pk.isdigit() and owner_id):
            raise ValidationError("Choose an owner from the list.")
        self.instance.connection_id = int(connection_pk)
        self.instance.owner_id = owner_id
        self.instance.owner_name = self.names.get(value, "")
        return value


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
