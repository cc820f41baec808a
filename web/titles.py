"""What the pages call the people and the codes they show: a person's name for an actor label
(`user:12`), the title of a care-team role in the reader's language, a pathway's timeline in
words. Codes stay in the API; here they are never shown where a title exists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from directory.models import CareTeamMember
from workflows.actors import parse_actor_label
from workflows.definition.compiled import CompiledDefinition
from workflows.definition.titles import event_title, role_title, state_title
from workflows.models import HistoryEntry


def actor_names(labels: Iterable[str]) -> dict[str, str]:
    """Each actor label as a reader sees it: the person's name (their username when they
    have none), "System" for the platform's own jobs, "Platform X" for an API client."""
    parsed = {label: parse_actor_label(label) for label in set(labels)}
    ids = {int(p.ref) for p in parsed.values() if p.kind == "user"}
    users = {u.pk: u.get_full_name() or u.get_username() for u in _users(ids)} if ids else {}
    names = {}
    for label, actor in parsed.items():
        if actor.kind == "user":
            names[label] = users.get(int(actor.ref), _("A former user"))
        elif actor.kind == "platform":
            names[label] = _("Platform %(name)s") % {"name": actor.ref}
        elif actor.kind in ("system", "command"):
            names[label] = _("System")
        else:
            names[label] = actor.ref
    return names


def _users(ids: set[int]) -> Iterable[Any]:
    model = get_user_model()
    return model.objects.filter(pk__in=ids).only(
        "pk", "first_name", "last_name", model.USERNAME_FIELD
    )


def care_role_title(role: str, definitions: Sequence[CompiledDefinition], language: str) -> str:
    """The title of a care-team role: the first of `definitions` that titles it, else the
    built-in title of the role, else its name."""
    for definition in definitions:
        if role in definition.role_titles:
            return role_title(role, language, definition)
    return role_title(role, language)


def member_rows(
    members: Iterable[CareTeamMember], definitions: Sequence[CompiledDefinition], language: str
) -> list[dict[str, Any]]:
    return [{"member": m, "role": care_role_title(m.role, definitions, language)} for m in members]


def timeline(
    entries: Sequence[HistoryEntry], definition: CompiledDefinition, language: str
) -> list[dict[str, Any]]:
    """A pathway's history in words: from which step to which, on what, by whom."""
    names = actor_names(h.actor for h in entries)
    return [
        {
            "occurred_at": h.occurred_at,
            "from_state": state_title(definition, h.from_state, language) if h.from_state else "",
            "to_state": state_title(definition, h.to_state, language),
            "event": _history_event(h, definition, language),
            "by": names[h.actor],
        }
        for h in entries
    ]


def _history_event(entry: HistoryEntry, definition: CompiledDefinition, language: str) -> str:
    if entry.kind == HistoryEntry.Kind.START:
        return _("pathway started")
    if entry.kind == HistoryEntry.Kind.MIGRATION:
        return _("moved to a new version of the pathway")
    if entry.kind == HistoryEntry.Kind.STATUS:
        status_events = {
            "suspend": _("pathway suspended"),
            "resume": _("pathway resumed"),
            "cancel": _("pathway cancelled"),
        }
        return status_events.get(entry.event, _("status change"))
    return event_title(definition, entry.from_state or None, entry.event, language)
