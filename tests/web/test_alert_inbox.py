"""The alert inbox through the login form: each alert's title, measured value and time, the
patient's band and score; acknowledging one (a form with its CSRF token) takes it out of the
inbox, for the nurse and her colleagues; those who may not see it get 404."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client

from coordination.models import AlertEvent, AlertRecord
from patients.models import AuditEvent
from patients.services import patient_break_glass
from tests.coordination.acknowledgement_scene import AckScene, build_ack_scene

PASSWORD = "synthetic-pass-inbox"


@pytest.fixture
def acked(db: None) -> AckScene:
    return build_ack_scene()


def _csrf(body: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert found is not None
    return found[1]


def logged_in(user: Any, language: str = "fr") -> Client:
    """A browser-like client (CSRF checked) logged in through the login form."""
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR="192.0.2.7")
    form = client.get("/login/")
    answer = client.post(
        "/login/",
        {"username": user.get_username(), "password": PASSWORD,
         "csrfmiddlewaretoken": _csrf(form.content.decode())},
    )  # fmt: skip
    assert answer.status_code == 302
    if language != "fr":
        page = client.get("/worklist/").content.decode()
        client.post(
            "/i18n/setlang/",
            {"language": language, "next": "/", "csrfmiddlewaretoken": _csrf(page)},
        )
    return client


def inbox(client: Client) -> str:
    response = client.get("/alerts/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def row_of(page: str, alert: AlertRecord) -> str:
    start = page.index(f'data-alert="{alert.pk}"')
    return page[start : page.index("</tr>", start)]


def test_the_inbox_shows_the_title_the_measurement_and_the_patients_band_and_score(
    acked: AckScene,
):
    page = inbox(logged_in(acked.nurse.user))

    row = row_of(page, acked.alert)
    assert "Saturation en oxygène basse" in row
    assert "low-spo2" not in row
    assert re.search(r'class="measured">88 %<', row)
    assert 'data-risk-band="medium"' in row
    assert 'data-risk-score="3"' in row
    assert "Risque modéré" in row
    assert "(score 3)" in row
    assert 'class="primary acknowledge"' in row


def test_the_title_is_in_the_users_language(acked: AckScene):
    page = inbox(logged_in(acked.nurse.user, language="en"))

    assert "Low oxygen saturation" in row_of(page, acked.alert)


def test_a_nurse_acknowledges_from_the_inbox_and_it_leaves_it_for_the_care_team(
    acked: AckScene,
):
    nurse = logged_in(acked.nurse.user)
    page = inbox(nurse)

    answer = nurse.post(
        f"/alerts/{acked.alert.pk}/acknowledge/", {"csrfmiddlewaretoken": _csrf(page)}
    )

    assert answer.status_code == 302
    assert answer["Location"] == "/alerts/"
    after = inbox(nurse)
    assert f'data-alert="{acked.alert.pk}"' not in after
    assert "Alerte prise en compte" in after
    assert f'data-alert="{acked.alert.pk}"' not in inbox(logged_in(acked.other_nurse.user))
    alert = AlertRecord.objects.get(pk=acked.alert.pk)
    assert alert.acknowledged_by_id == acked.nurse.user.pk
    assert AlertEvent.objects.filter(alert=alert).count() == 1
    audit = AuditEvent.objects.get(resource_type="AlertRecord", action="update")
    assert (audit.entry_point, audit.client_address) == ("web", "192.0.2.7")


def test_without_the_csrf_token_nothing_is_acknowledged(acked: AckScene):
    nurse = logged_in(acked.nurse.user)

    answer = nurse.post(f"/alerts/{acked.alert.pk}/acknowledge/", {})

    assert answer.status_code == 403
    assert AlertRecord.objects.get(pk=acked.alert.pk).acknowledged_at is None


def test_the_second_nurse_is_told_who_acknowledged_it_first(acked: AckScene):
    first, second = logged_in(acked.nurse.user), logged_in(acked.other_nurse.user)
    stale = inbox(second)  # the second nurse's page still shows the alert
    done = first.post(
        f"/alerts/{acked.alert.pk}/acknowledge/", {"csrfmiddlewaretoken": _csrf(inbox(first))}
    )
    assert done.status_code == 302

    answer = second.post(
        f"/alerts/{acked.alert.pk}/acknowledge/", {"csrfmiddlewaretoken": _csrf(stale)}
    )

    assert answer.status_code == 302
    page = inbox(second)
    assert "Non effectué : déjà pris en compte par " + acked.nurse.user.get_full_name() in page
    assert AlertEvent.objects.count() == 1


@pytest.mark.parametrize("who", ["outsider", "patient"])
def test_whoever_may_not_see_the_alert_gets_404_and_the_refusal_is_audited(
    acked: AckScene, who: str, django_user_model: Any
):
    if who == "outsider":
        user = acked.outsider.user
    else:
        user = django_user_model.objects.create_user(username="portal-inbox")
        acked.patient.user = user
        acked.patient.save(update_fields=["user"])
    client = logged_in(user)
    token = _csrf(client.get("/login/").content.decode())

    answer = client.post(f"/alerts/{acked.alert.pk}/acknowledge/", {"csrfmiddlewaretoken": token})

    assert answer.status_code == 404
    assert AlertRecord.objects.get(pk=acked.alert.pk).acknowledged_at is None
    refused = AuditEvent.objects.filter(actor_id=user.pk, outcome="denied")
    assert refused.filter(patient_id=acked.patient.pk).exists()


def test_a_reader_who_broke_the_glass_sees_the_alert_without_the_button(acked: AckScene):
    doctor = acked.emergency_doctor.user
    patient_break_glass(
        user=doctor, patient_id=acked.patient.pk, reason="synthetic emergency", entry_point="system"
    )
    client = logged_in(doctor)
    page = inbox(client)

    assert "acknowledge" not in row_of(page, acked.alert).replace("data-alert", "")
    answer = client.post(
        f"/alerts/{acked.alert.pk}/acknowledge/", {"csrfmiddlewaretoken": _csrf(page)}
    )
    assert answer.status_code == 302
    assert "membre de l’équipe de soins" in inbox(client)
    assert AlertRecord.objects.get(pk=acked.alert.pk).acknowledged_at is None


def test_an_alert_without_a_declared_title_is_named_from_its_measurement_or_its_name(db: None):
    from django.utils import translation  # noqa: PLC0415

    from tests.coordination.test_alerts import ALERT_TEST  # noqa: PLC0415
    from web.alerts import alert_title  # noqa: PLC0415
    from workflows.actors import Actor  # noqa: PLC0415
    from workflows.selectors import compiled_definition  # noqa: PLC0415
    from workflows.services import definition_publish  # noqa: PLC0415

    definition = compiled_definition(
        definition_publish(source=ALERT_TEST, actor=Actor(id="test"), fmt="yaml").definition
    )
    missing = AlertRecord(name="missing-29463-7", kind="missing", state="monitoring")
    untitled = AlertRecord(name="low-spo2", kind="condition", state="monitoring")
    titled = AlertRecord(name="weight-gain", kind="condition", state="monitoring")

    with translation.override("fr"):
        assert alert_title(missing, definition, "fr") == "Mesure manquante : Poids"
        assert alert_title(untitled, definition, "fr") == "low-spo2"
        assert alert_title(titled, definition, "fr") == "Prise de poids"
        assert alert_title(titled, None, "fr") == "weight-gain"
