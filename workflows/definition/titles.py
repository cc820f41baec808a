"""What a person reads for the codes of a pathway: the title of a state, an event, a role, an
alert or a task in their language, never the code where a title exists.

Titles come from the definition (`title: {fr: ..., en: ...}`, `role_titles`); where the
definition gives none, an event takes the title of what fires it (an alert's, a timer's, the
tasks of the step being done) and a common role name takes a built-in title, translated with
the installed translator (workflows.definition.translation). The code is the last resort.
"""

from __future__ import annotations

from workflows.definition.compiled import CompiledDefinition, Text, localized
from workflows.definition.schema import TASKS_COMPLETED
from workflows.definition.translation import gettext as _
from workflows.definition.translation import gettext_noop

# The roles most pathways name, titled for a definition that titles none of its own.
ROLE_TITLES: dict[str, str] = {
    "gp": gettext_noop("General practitioner"),
    "nurse": gettext_noop("Nurse"),
    "coordinator": gettext_noop("Care coordinator"),
    "patient": gettext_noop("Patient"),
    "cardiologist": gettext_noop("Cardiologist"),
    "diabetologist": gettext_noop("Diabetologist"),
    "endocrinologist": gettext_noop("Endocrinologist"),
    "ophthalmologist": gettext_noop("Ophthalmologist"),
    "dentist": gettext_noop("Dentist"),
    "podiatrist": gettext_noop("Podiatrist"),
    "pharmacist": gettext_noop("Pharmacist"),
    "hospital_pharmacist": gettext_noop("Hospital pharmacist"),
    "hospital_physician": gettext_noop("Hospital physician"),
    "physiotherapist": gettext_noop("Physiotherapist"),
    "dietitian": gettext_noop("Dietitian"),
    "psychologist": gettext_noop("Psychologist"),
    "social_worker": gettext_noop("Social worker"),
    "specialist": gettext_noop("Specialist"),
    "device_supplier": gettext_noop("Device supplier"),
    "caregiver": gettext_noop("Caregiver"),
}
TASKS_COMPLETED_TITLE = gettext_noop("All the step's tasks done")


def role_title(role: str, language: str, definition: CompiledDefinition | None = None) -> str:
    """The role in words: the definition's title for it, else the built-in one, else the
    role's name."""
    if definition is not None and role in definition.role_titles:
        return localized(definition.role_titles[role], language) or role
    builtin = ROLE_TITLES.get(role)
    return _(builtin) if builtin is not None else role


def state_title(definition: CompiledDefinition, state: str, language: str) -> str:
    spec = definition.states.get(state)
    return localized(spec.title, language) or state if spec is not None else state


def alert_title(definition: CompiledDefinition, name: str, language: str) -> str:
    """The title of the alert (or expected measurement) `name`, wherever it is declared."""
    for alert in definition.every_alert:
        if alert.name == name and alert.title:
            return localized(alert.title, language)
    for expectation in definition.every_expectation:
        if expectation.key == name and expectation.title:
            return localized(expectation.title, language)
    return name


def task_title(definition: CompiledDefinition, code: str, language: str) -> str:
    for state in definition.states.values():
        for task in state.tasks:
            if task.code == code:
                return localized(task.title, language) or code
    for alert in definition.every_alert:
        if alert.task_code == code and alert.title:
            return localized(alert.title, language)
    return code


def _event_text(definition: CompiledDefinition, state: str | None, event: str) -> Text | None:
    """Where an event's title comes from, nearest first: the transition's own title, the same
    event's title on another state's transition, the built-in title of tasks_completed, the
    title of the alert or the timer that fires it."""
    spec = definition.states.get(state) if state is not None else None
    if spec is not None and event in spec.transitions and spec.transitions[event].title:
        return spec.transitions[event].title
    for other in definition.states.values():
        transition = other.transitions.get(event)
        if transition is not None and transition.title:
            return transition.title
    if event == TASKS_COMPLETED:
        return None
    for alert in definition.every_alert:
        if alert.event == event and alert.title:
            return alert.title
    for timer in definition.timers:
        if timer.event == event and timer.title:
            return timer.title
    for other in definition.states.values():
        for action in other.timers:
            if action.event == event and action.title:
                return action.title
    return None


def event_title(
    definition: CompiledDefinition, state: str | None, event: str, language: str
) -> str:
    """The title of `event` as handled in `state` (None: wherever it is handled)."""
    text = _event_text(definition, state, event)
    if text is not None:
        return localized(text, language) or event
    if event == TASKS_COMPLETED:
        return _(TASKS_COMPLETED_TITLE)
    return event
