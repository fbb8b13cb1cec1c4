"""The inline field forms: the input fits the field's kind, bad input gets a clear message and
loses nothing, and the value the user saw parses the same way as the new one."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms

from dealdesk.deals.forms import FieldEditForm, LostForm, ReopenForm, StageForm, known_field
from dealdesk.providers.base import Choice, EditableField

STAFF = (Choice("staff_1", "Priya Shah"), Choice("staff_2", "Tom Hughes"))


def field(name: str, kind: str, value=None, **kwargs) -> EditableField:
    return EditableField(
        name=name, label=name.replace("_", " ").capitalize(), kind=kind, value=value, **kwargs
    )


def post(form_field: EditableField, value: str, original: str = "") -> FieldEditForm:
    return FieldEditForm(
        form_field,
        {
            form_field.name: value,
            "original": original,
            "seen_updated_at": "2025-03-01T10:00:00+00:00",
            "idempotency_key": "key-1",
        },
    )


def test_unbound_form_shows_the_current_value_and_remembers_it_as_the_original():
    form = FieldEditForm(field("value", "number", Decimal("50000.00")))

    assert form.initial == {"value": "50000.00", "original": "50000.00"}
    html = str(form.value_field)
    assert 'type="number"' in html
    assert 'step="0.01"' in html


def test_number_parses_to_decimal_and_the_original_too():
    form = post(field("value", "number"), "1250.50", original="1000")

    assert form.is_valid(), form.errors
    assert form.changes() == {"value": Decimal("1250.50")}
    assert form.originals() == {"value": Decimal("1000")}
    assert form.cleaned_data["seen_updated_at"] == "2025-03-01T10:00:00+00:00"
    assert form.cleaned_data["idempotency_key"] == "key-1"


def test_bad_number_gets_a_clear_message_and_keeps_what_was_typed():
    form = post(field("value", "number"), "12,50 euros")

    assert not form.is_valid()
    assert form.errors["value"] == ["Enter an amount in numbers, like 1250.50."]
    assert 'value="12,50 euros"' in str(form.value_field)
    assert 'aria-invalid="true"' in str(form.value_field)


def test_number_with_three_decimals_is_refused_in_plain_words():
    form = post(field("value", "number"), "10.005")

    assert not form.is_valid()
    assert form.errors["value"] == ["Use at most 2 decimal places, like 1250.50."]


def test_empty_optional_number_means_no_value():
    form = post(field("value", "number"), "")

    assert form.is_valid()
    assert form.changes() == {"value": None}


def test_date_uses_a_date_input_and_parses_iso_and_day_first():
    iso_form = post(field("expected_close_date", "date"), "2025-03-31")
    day_first = post(field("expected_close_date", "date"), "31/03/2025")

    assert 'type="date"' in str(iso_form.value_field)
    assert iso_form.is_valid() and day_first.is_valid()
    assert iso_form.changes() == {"expected_close_date": dt.date(2025, 3, 31)}
    assert day_first.changes() == iso_form.changes()


def test_bad_date_gets_an_example_of_the_format():
    form = post(field("expected_close_date", "date"), "next friday")

    assert not form.is_valid()
    assert form.errors["expected_close_date"] == ["Enter a date like 2025-03-31."]


def test_datetime_value_shows_as_its_date_in_the_input():
    form = FieldEditForm(field("starts_at", "date", dt.datetime(2025, 4, 1, 9, 30, tzinfo=dt.UTC)))

    assert form.initial["starts_at"] == "2025-04-01"


def test_tags_are_comma_separated_trimmed_and_deduplicated():
    form = post(field("tags", "tags"), " urgent,  vip , ,urgent,Big   deal", original="vip")

    assert form.is_valid()
    assert form.changes() == {"tags": ("urgent", "vip", "Big deal")}
    assert form.originals() == {"tags": ("vip",)}


def test_current_tags_show_joined_by_commas():
    form = FieldEditForm(field("tags", "tags", ("a", "b")))

    assert form.initial["tags"] == "a, b"


def test_too_long_tag_is_refused_and_named():
    form = post(field("tags", "tags"), "ok, " + "x" * 60)

    assert not form.is_valid()
    assert "at most 50 characters" in form.errors["tags"][0]


def test_select_lists_staff_and_empty_means_nobody():
    assignee = field("assignee", "select", "staff_1", choices=STAFF)
    form = post(assignee, "", original="staff_1")

    assert form.is_valid()
    assert form.changes() == {"assignee": None}
    assert form.originals() == {"assignee": "staff_1"}
    assert "Priya Shah" in str(FieldEditForm(assignee).value_field)


def test_select_refuses_an_unknown_staff_id():
    form = post(field("assignee", "select", choices=STAFF), "staff_999")

    assert not form.is_valid()
    assert form.errors["assignee"] == ["Choose one of the listed options."]


def test_required_name_refuses_blank_with_a_message():
    form = post(field("name", "text", "Old", required=True), "   ")

    assert not form.is_valid()
    assert form.errors["name"] == ["Enter a name."]


def test_text_respects_the_fields_max_length():
    form = post(field("name", "text", max_length=5), "Too long")

    assert not form.is_valid()
    assert 'maxlength="5"' in str(form.value_field)


def test_note_uses_a_textarea_and_empty_means_none():
    note = field("note", "textarea")
    form = post(note, "", original="Old note")

    assert isinstance(form.fields["note"].widget, forms.Textarea)
    assert form.is_valid()
    assert form.changes() == {"note": None}
    assert form.originals() == {"note": "Old note"}


def test_a_write_without_idempotency_key_is_invalid():
    form = FieldEditForm(field("name", "text"), {"name": "New"})

    assert not form.is_valid()
    assert "idempotency_key" in form.errors


def test_known_field_knows_every_editable_field_of_both_sources():
    assert known_field("starts_at").label == "Move-in date"
    assert known_field("expected_close_date").kind == "date"
    assert known_field("assignee").kind == "select"
    assert known_field("owner_id") is None


def test_select_of_a_known_field_accepts_any_id_until_the_deal_is_read():
    form = post(known_field("assignee"), "staff_7")

    assert form.is_valid()
    assert form.changes() == {"assignee": "staff_7"}


def test_stage_form_sends_the_stage_and_status_the_user_saw():
    form = StageForm(
        {
            "stage": "stage_2",
            "original_stage": "stage_1",
            "original_status": "open",
            "idempotency_key": "k",
        }
    )

    assert form.is_valid()
    assert form.originals() == {"stage": "stage_1", "status": "open"}
    assert form.cleaned_data["seen_updated_at"] is None


def test_lost_form_asks_for_a_reason():
    form = LostForm({"idempotency_key": "k"})

    assert not form.is_valid()
    assert form.errors["reason"] == ["Choose why the deal was lost."]


def test_reopen_form_needs_a_stage_and_an_optional_assignee():
    missing = ReopenForm({"idempotency_key": "k"})
    complete = ReopenForm({"idempotency_key": "k", "stage": "stage_1"})

    assert missing.errors["stage"] == ["Choose the stage to reopen into."]
    assert complete.is_valid()
    assert complete.cleaned_data["assignee"] is None


def test_a_name_of_only_spaces_is_refused_before_any_upstream_call():
    from dealdesk.deals.forms import known_field

    field = known_field("name")
    assert field.required and field.max_length == 300
