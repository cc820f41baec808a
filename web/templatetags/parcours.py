"""Template tags of the care-team pages.

`identity_status`: the patient's identity status badge, shown wherever a patient is named
(worklists, triage board, alert inbox, task and patient pages). A tag rather than an
included template: a worklist names a patient on each of up to 150 rows, and an include per
row cost a fifth of the page's time."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from patients.models import Patient

register = template.Library()


@register.simple_tag
def identity_status(patient: Patient) -> SafeString:
    status = patient.identity_status
    return format_html(
        '<span class="status identity-{}" data-identity-status="{}">{}</span>',
        status,
        status,
        gettext("Identity: %(status)s") % {"status": patient.get_identity_status_display()},
    )
