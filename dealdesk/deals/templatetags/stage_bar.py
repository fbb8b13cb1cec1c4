"""The deal page's one stage control: its pipeline's open stages in order, then Won and Lost."""

from __future__ import annotations

from dataclasses import dataclass

from django import template

from dealdesk.providers.base import OPEN, WON, Deal, DealActions, Stage

register = template.Library()


@dataclass(frozen=True)
class StageStep:
    stage: Stage
    state: str  # done | current | todo


@register.simple_tag
def stage_steps(deal: Deal, actions: DealActions | None) -> list[StageStep]:
    """The open stages a deal moves through: the ones it can be moved to (in pipeline order),
    or, for a closed deal or a viewer, its pipeline's open stages. Those before the deal's stage
    are done; a won deal has done them all."""
    if actions is not None and actions.stage_choices:
        stages = list(actions.stage_choices)
    elif deal.pipeline is not None:
        stages = list(deal.pipeline.stages_of_type(OPEN))
    else:
        stages = []
    stage_id = deal.stage.id if deal.stage is not None else None
    if deal.stage is not None and deal.status == OPEN and stage_id not in {s.id for s in stages}:
        stages.append(deal.stage)  # a stage the pipeline no longer lists (or deleted) still shows
    current = next(
        (i for i, s in enumerate(stages) if deal.status == OPEN and s.id == stage_id), None
    )
    steps = []
    for index, stage in enumerate(stages):
        if index == current:
            state = "current"
        elif deal.status == WON or (current is not None and index < current):
            state = "done"
        else:
            state = "todo"
        steps.append(StageStep(stage, state))
    return steps
