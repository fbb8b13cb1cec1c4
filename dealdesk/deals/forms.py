"""Forms for the deal writes. Inline field forms are built from the ``EditableField`` the adapter
reports, so the input fits the field's kind and bad input comes back with a clear message."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from dealdesk.deals.templatetags.deal_format import input_value
from dealdesk.providers.base import EditableField

# DealDesk's editable field vocabulary (docs/service-api.md): the kind and label of each, so a
# save can be parsed without first fetching the deal again. The adapter's EditableField wins
# whenever we have it.
FIELD_KINDS = {
    "name": ("text", "Name"),
    "note": ("textarea", "Note"),
    "starts_at": ("date", "Move-in date"),
    "assignee": ("select", "Assignee"),
    "value": ("number", "Value"),
    "tags": ("tags", "Tags"),
    "expected_close_date": ("date", "Expected close date"),
    "unit_type": ("select", "Unit type"),  # a line item, replaced by another (LINE_ITEM_TYPES)
    "protection": ("select", "Protection"),
}

# Rules that hold for a field on every provider, so a save is checked before any upstream call:
# both APIs refuse an empty name, and nodestash caps a title at 300 characters.
FIELD_RULES: dict[str, dict[str, Any]] = {"name": {"required": True, "max_length": 300}}

MAX_TAG_LENGTH = 50
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y"]


def known_field(name: str) -> EditableField | None:
    """An ``EditableField`` from the vocabulary alone (no value, no choices)."""
    if name not in FIELD_KINDS:
        return None
    kind, label = FIELD_KINDS[name]
    return EditableField(name=name, label=label, kind=kind, **FIELD_RULES.get(name, {}))


class TagsField(forms.CharField):
    """Comma-separated tags -> a tuple, trimmed, without empties or repeats."""

    def to_python(self, value: Any) -> tuple[str, ...]:
        text = super().to_python(value) or ""
        tags: list[str] = []
        for part in text.split(","):
            tag = " ".join(part.split())
            if tag and tag not in tags:
                tags.append(tag)
        return tuple(tags)

    def validate(self, value: tuple[str, ...]) -> None:
        if self.required and not value:
            raise ValidationError("Enter at least one tag.", code="required")
        too_long = [tag for tag in value if len(tag) > MAX_TAG_LENGTH]
        if too_long:
            raise ValidationError(
                f"Tags can be at most {MAX_TAG_LENGTH} characters: “{too_long[0][:60]}” is longer.",
                code="max_length",
            )


class OptionalChoiceField(forms.ChoiceField):
    """A select whose empty option means "none" (``None``). Without known choices (a save
    parsed before the deal is read again) any id passes and the upstream API checks it."""

    def to_python(self, value: Any) -> str | None:
        text = super().to_python(value)
        return text or None

    def valid_value(self, value: Any) -> bool:
        return value is None or not self.choices or super().valid_value(value)


def _value_field(field: EditableField) -> forms.Field:
    """The Django form field that edits one ``EditableField``."""
    common = {"label": field.label, "required": field.required, "help_text": field.help_text}
    if field.kind == "number":
        return forms.DecimalField(
            **common,
            max_digits=15,
            decimal_places=2,
            min_value=Decimal("0"),
            widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
            error_messages={
                "invalid": "Enter an amount in numbers, like 1250.50.",
                "max_decimal_places": "Use at most 2 decimal places, like 1250.50.",
                "max_digits": "That amount is too large.",
                "max_whole_digits": "That amount is too large.",
                "min_value": "Enter an amount of 0 or more.",
                "required": f"Enter a {field.label.lower()}.",
            },
        )
    if field.kind == "date":
        return forms.DateField(
            **common,
            input_formats=DATE_INPUT_FORMATS,
            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            error_messages={
                "invalid": "Enter a date like 2025-03-31.",
                "required": f"Choose a {field.label.lower()}.",
            },
        )
    if field.kind == "select":
        choices = [(choice.value, choice.label) for choice in field.choices]
        if choices and not field.required and all(value for value, _label in choices):
            choices.insert(0, ("", "— None —"))
        return OptionalChoiceField(
            **common,
            choices=choices,
            error_messages={"invalid_choice": "Choose one of the listed options."},
        )
    if field.kind == "tags":
        return TagsField(
            **{**common, "help_text": field.help_text or "Separate tags with commas."},
            widget=forms.TextInput(attrs={"autocomplete": "off"}),
        )
    attrs = {"maxlength": field.max_length} if field.max_length else {}
    if field.kind == "textarea":
        return forms.CharField(
            **common,
            max_length=field.max_length,
            widget=forms.Textarea(attrs={"rows": 4, **attrs}),
        )
    return forms.CharField(
        **common,
        max_length=field.max_length,
        widget=forms.TextInput(attrs={"autocomplete": "off", **attrs}),
        error_messages={"required": f"Enter a {field.label.lower()}."},
    )


class DealWriteForm(forms.Form):
    """What every write carries besides its own data: the deal's ``updated_at`` the user saw and
    the idempotency key of this submit (a double submit of one rendered form acts once)."""

    seen_updated_at = forms.CharField(required=False, widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def clean_seen_updated_at(self) -> str | None:
        return self.cleaned_data["seen_updated_at"] or None


class FieldEditForm(DealWriteForm):
    """One inline field: the new value (input named after the field) and the value the user saw
    (``original``), both parsed the same way so the service can compare them with upstream."""

    original = forms.CharField(required=False, strip=False, widget=forms.HiddenInput)

    def __init__(self, field: EditableField, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"id_{field.name}_%s")
        super().__init__(*args, **kwargs)
        self.editable_field = field
        self.fields[field.name] = _value_field(field)
        self.fields[field.name].widget.attrs["autofocus"] = True
        if not self.is_bound:
            self.initial.setdefault(field.name, input_value(field.kind, field.value))
            self.initial.setdefault("original", input_value(field.kind, field.value))

    @property
    def value_field(self) -> forms.BoundField:
        """The input, marked invalid and tied to its error message when it has one."""
        name = self.editable_field.name
        if self.is_bound and self.errors.get(name):
            self.fields[name].widget.attrs.update(
                {"aria-invalid": "true", "aria-describedby": f"id_{name}_error"}
            )
        return self[name]

    @property
    def new_value(self) -> Any:
        value = self.cleaned_data[self.editable_field.name]
        return _normalise(self.editable_field.kind, value)

    @property
    def original_value(self) -> Any:
        """The value the user saw, as a Python value; kept verbatim when it no longer parses."""
        raw = self.cleaned_data.get("original", "")
        form_field = self.fields[self.editable_field.name]
        try:
            value = form_field.to_python(raw)
        except ValidationError:
            return raw
        return _normalise(self.editable_field.kind, value)

    def changes(self) -> dict[str, Any]:
        return {self.editable_field.name: self.new_value}

    def originals(self) -> dict[str, Any]:
        return {self.editable_field.name: self.original_value}


def _normalise(kind: str, value: Any) -> Any:
    """Empty optional values are ``None`` (tags: an empty tuple), as the service expects."""
    if kind == "tags":
        return tuple(value or ())
    if kind in ("textarea", "date", "number", "select") and value in ("", None):
        return None
    return value


class StateChangeForm(DealWriteForm):
    """Mark won: nothing but the write context and the state the user saw. Each state form
    says what its service write takes (``write_arguments``): the state views are one pattern."""

    original_stage = forms.CharField(required=False, widget=forms.HiddenInput)
    original_status = forms.CharField(required=False, widget=forms.HiddenInput)

    def originals(self) -> dict[str, Any]:
        return {
            "stage": self.cleaned_data["original_stage"] or None,
            "status": self.cleaned_data["original_status"] or None,
        }

    def write_arguments(self) -> dict[str, Any]:
        """The service write's own arguments, beside the user, the deal and the write context."""
        return {}

    def write_kwargs(self, *, user, connection_slug: str, deal_id: str) -> dict[str, Any]:
        return {
            "user": user,
            "connection_slug": connection_slug,
            "deal_id": deal_id,
            "originals": self.originals(),
            "seen_updated_at": self.cleaned_data["seen_updated_at"],
            "idempotency_key": self.cleaned_data["idempotency_key"],
            **self.write_arguments(),
        }


class StageForm(StateChangeForm):
    """Change stage: the chosen stage, and the state the user saw."""

    stage = forms.CharField(label="Stage", error_messages={"required": "Choose a stage."})

    def write_arguments(self) -> dict[str, Any]:
        return {"stage_id": self.cleaned_data["stage"]}


class LostForm(StateChangeForm):
    """``reason`` is a Stora lost reason or a nodestash lost stage id (the only one may be sent
    hidden when the pipeline has a single lost stage)."""

    reason = forms.CharField(error_messages={"required": "Choose why the deal was lost."})

    def write_arguments(self) -> dict[str, Any]:
        return {"reason": self.cleaned_data["reason"]}


class ReopenForm(StateChangeForm):
    stage = forms.CharField(error_messages={"required": "Choose the stage to reopen into."})
    assignee = forms.CharField(required=False)

    def clean_assignee(self) -> str | None:
        return self.cleaned_data["assignee"] or None

    def write_arguments(self) -> dict[str, Any]:
        return {
            "stage_id": self.cleaned_data["stage"],
            "assignee_id": self.cleaned_data["assignee"],
        }


class BoardMoveForm(StateChangeForm):
    """A card's "Move to": the deal, the column it sat in, the target column and, for Lost, the
    reason (asked for before anything is sent)."""

    connection = forms.CharField(max_length=40)  # its shape is checked by the view (a 400)
    pipeline = forms.CharField(max_length=100)
    deal_id = forms.CharField(max_length=100)
    from_column = forms.CharField(max_length=100, required=False)
    target = forms.CharField(
        max_length=100, error_messages={"required": "Choose the column to move the deal to."}
    )
    reason = forms.CharField(max_length=100, required=False)
