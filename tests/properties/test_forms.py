"""Arbitrary form input through the edit forms: each submit is either valid (and turns into the
changes the service expects) or refused with a message for the user. Nothing raises."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from dealdesk.deals.forms import (
    FIELD_KINDS,
    FieldEditForm,
    LostForm,
    ReopenForm,
    StageForm,
    StateChangeForm,
)
from dealdesk.providers.base import Choice, EditableField

FAST = settings(max_examples=100, deadline=None)

text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1e400",
            "NaN",
            "1,250.50",
            "12.345",
            "2025-02-30",
            "31/12/2025",
            "a,,b, ,a",
            "\x00",
            "x" * 400,
            "<b>bold</b>",
        ]
    ),
)
posted = st.fixed_dictionaries(
    {},
    optional={
        name: text
        for name in [
            *FIELD_KINDS,
            "original",
            "seen_updated_at",
            "idempotency_key",
            "stage",
            "original_stage",
            "original_status",
            "reason",
            "assignee",
        ]
    },
)
fields = st.builds(
    EditableField,
    name=st.sampled_from(sorted(FIELD_KINDS)),
    label=st.sampled_from(["Name", "Value", "Tags"]),
    kind=st.sampled_from(["text", "textarea", "number", "date", "select", "tags"]),
    choices=st.sampled_from([(), (Choice("", "Unassigned"), Choice("stf_1", "Ada"))]),
    required=st.booleans(),
    max_length=st.sampled_from([None, 300]),
)


def assert_refused_in_words(form) -> None:
    assert form.errors
    for messages in form.errors.values():
        assert all(isinstance(m, str) and m.strip() for m in messages)


@FAST
@given(field=fields, data=posted)
def test_an_inline_edit_is_valid_or_refused_with_a_message(field, data):
    form = FieldEditForm(field, data)
    if not form.is_valid():
        assert_refused_in_words(form)
        return
    changes = form.changes()
    value = changes[field.name]
    if field.kind == "number" and value is not None:
        assert isinstance(value, Decimal) and value.is_finite() and value >= 0
    if field.kind == "tags":
        assert isinstance(value, tuple) and all(tag.strip() for tag in value)
    if field.required and field.kind in ("text", "textarea"):
        assert value
    form.originals()


@FAST
@given(data=posted)
def test_the_state_forms_are_valid_or_refused_with_a_message(data):
    for form_class in (StageForm, StateChangeForm, LostForm, ReopenForm):
        form = form_class(data)
        if form.is_valid():
            form.originals()
            assert form.cleaned_data["idempotency_key"]
        else:
            assert_refused_in_words(form)
