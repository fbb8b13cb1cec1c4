"""The timeline's forms: Add note, Add task and Mark done. Each carries the idempotency key of
its rendered form, so a double submit adds one note."""

from __future__ import annotations

from django import forms

from dealdesk.deals.forms import DATE_INPUT_FORMATS

MAX_SUBJECT_LENGTH = 500  # nodestash's limit (../shared/api/nodestash.md §20)
MAX_BODY_LENGTH = 10_000


class _TimelineWriteForm(forms.Form):
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)


class NoteForm(_TimelineWriteForm):
    subject = forms.CharField(
        label="Subject",
        max_length=MAX_SUBJECT_LENGTH,
        error_messages={"required": "Enter a subject for the note."},
    )
    body = forms.CharField(
        label="Details", required=False, max_length=MAX_BODY_LENGTH, widget=forms.Textarea
    )


class TaskForm(_TimelineWriteForm):
    subject = forms.CharField(
        label="Subject",
        max_length=MAX_SUBJECT_LENGTH,
        error_messages={"required": "Enter what is to be done."},
    )
    due_date = forms.DateField(
        label="Due date",
        input_formats=DATE_INPUT_FORMATS,
        error_messages={
            "required": "Enter the date it is due.",
            "invalid": "Enter a date such as 2026-12-31.",
        },
    )


class CompleteForm(_TimelineWriteForm):
    pass
