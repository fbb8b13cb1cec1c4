"""The New deal form, built from the fields the source's adapter reports (``create_fields``), so
each vendor's form asks in its own words and bad input comes back per field, values kept."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator

from dealdesk.deals.forms import _value_field
from dealdesk.deals.templatetags.deal_format import input_value
from dealdesk.providers.base import EditableField

CURRENCY_CODE = RegexValidator(r"^[A-Za-z]{3}$", "Enter a three-letter currency code, like EUR.")


def _create_field(field: EditableField) -> forms.Field:
    if field.lookup:  # the picked id (a radio of the search results); the search is not posted
        return forms.CharField(
            label=field.label,
            required=field.required,
            max_length=100,
            error_messages={"required": f"Choose a {field.label.lower()}."},
        )
    if field.kind == "currency":
        return forms.CharField(
            label=field.label,
            required=field.required,
            max_length=3,
            validators=[CURRENCY_CODE],
            help_text=field.help_text,
            error_messages={"max_length": CURRENCY_CODE.message},
        )
    return _value_field(field)


class DealCreateForm(forms.Form):
    """One source's new deal. ``idempotency_key`` is made once per rendered form (the template's
    ``new_idempotency_key``): a double submit of that form creates one deal."""

    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(
        self,
        create_fields: list[EditableField],
        *args: Any,
        initial_stage: str = "",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("auto_id", "id_new_%s")
        super().__init__(*args, **kwargs)
        self.create_fields = create_fields
        for field in create_fields:
            self.fields[field.name] = _create_field(field)
            if not self.is_bound:
                value = field.value
                if field.name == "stage" and initial_stage:
                    value = initial_stage
                self.initial.setdefault(field.name, input_value(field.kind, value))

    def rows(self) -> list[tuple[EditableField, forms.BoundField]]:
        """Each field with its input, marked invalid and tied to its message when it has one."""
        rows = []
        for field in self.create_fields:
            bound = self[field.name]
            if self.is_bound and self.errors.get(field.name):
                bound.field.widget.attrs.update(
                    {"aria-invalid": "true", "aria-describedby": f"id_new_{field.name}_error"}
                )
            rows.append((field, bound))
        return rows

    def values(self) -> dict[str, Any]:
        """The typed values by field name, empty ones left out (nothing is sent for them)."""
        return {
            field.name: self.cleaned_data[field.name]
            for field in self.create_fields
            if self.cleaned_data.get(field.name) not in (None, "", ())
        }

    def add_upstream_errors(self, field_errors: dict[str, list[str]]) -> None:
        """A vendor's refusal, next to the field it names (else above the form)."""
        for name, messages in field_errors.items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
