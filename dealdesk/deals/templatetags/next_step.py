"""A deal's next step on list rows, board cards and the deal page: overdue, due today,
planned, or "No next step" as a warning. The state is always in words, never colour alone."""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import Truncator

from dealdesk.providers.base import Activity, Deal, NextStep

register = template.Library()

SUBJECT_CHARS = 40


def next_step_state(step: NextStep) -> str:
    """none | overdue | today | planned, today being the local date (``TIME_ZONE``)."""
    if not step.planned:
        return "none"
    if step.due_date is None:
        return "planned"
    today = timezone.localdate()
    if step.due_date < today:
        return "overdue"
    return "today" if step.due_date == today else "planned"


@register.simple_tag
def next_step_badge(deal: Deal) -> str:
    """Only open deals of a source that keeps activities get one."""
    step = deal.next_step
    if step is None or not deal.is_open:
        return ""
    state = next_step_state(step)
    if state == "none":
        return format_html(
            '<span class="next-step next-step-none" title="{}">'
            '<span aria-hidden="true">⚠ </span>No next step</span>',
            "No open task, call or meeting is planned for this deal",
        )
    words = {"overdue": "Overdue", "today": "Due today", "planned": "Planned"}[state]
    due = f" ({date_format(step.due_date, 'j M')})" if step.due_date and state != "today" else ""
    subject = Truncator(step.subject).chars(SUBJECT_CHARS)
    return format_html(
        '<span class="next-step next-step-{}" title="{}">{}: {}{}</span>',
        state,
        f"Next step: {step.subject}",
        words,
        subject,
        due,
    )


@register.simple_tag
def activity_due(activity: Activity) -> str:
    """Done, Overdue (due 3 Dec), Due today, Due 12 Dec, or Open (no due date)."""
    if activity.is_done:
        return "Done"
    if activity.due_date is None:
        return "Open"
    today = timezone.localdate()
    day = date_format(activity.due_date, "j M")
    if activity.due_date < today:
        return f"Overdue (due {day})"
    return "Due today" if activity.due_date == today else f"Due {day}"
