"""The patient page's "Paramètres de surveillance": each declared parameter of a pathway with
its value, default, bounds and who set it, the history, and the form setting one."""

from __future__ import annotations

import html
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from coordination.models import PathwayParameter
from coordination.services.parameters import parameter_set
from patients.models import AuditEvent
from tests.coordination.conftest import Scene
from tests.coordination.parameters_pathway import CopdScene, copd_publish, copd_scene

PASSWORD = "synthetic-pass-1"


@pytest.fixture
def copd(db: None) -> CopdScene:
    copd_publish()
    return copd_scene()


def _csrf(body: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert found is not None
    return found[1]


def _logged_in_through_the_form(user) -> Client:
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR="192.0.2.9")
    form = client.get("/login/")
    answer = client.post(
        "/login/",
        {"username": user.get_username(), "password": PASSWORD,
         "csrfmiddlewaretoken": _csrf(form.content.decode())},
    )  # fmt: skip
    assert answer.status_code == 302
    return client


def _logged_in(user, language: str = "fr") -> Client:
    client = Client()
    client.force_login(user)
    if language != "fr":
        client.post("/i18n/setlang/", {"language": language, "next": "/"})
    return client


def _page(client: Client, scene: CopdScene) -> str:
    response = client.get(f"/patients/{scene.patient.pk}/")
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def _section(page: str) -> str:
    start = page.index('class="parameters"')
    return page[start : page.index("</section>", start)]


def test_a_pulmonologist_logged_in_sets_the_spo2_floor_from_the_patient_page(copd):
    client = _logged_in_through_the_form(copd.pulmonologist.user)
    page = _page(client, copd)
    before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()

    answer = client.post(
        f"/care-pathways/{copd.pathway.pk}/parameters/",
        {"name": "spo2_floor", "value": "88", "reason": "BPCO : hypoxémie chronique",
         "csrfmiddlewaretoken": _csrf(page)},
        follow=True,
    )  # fmt: skip

    assert "Paramètres de surveillance" in page
    assert answer.redirect_chain == [(f"/patients/{copd.patient.pk}/", 302)]
    shown = html.unescape(answer.content.decode())
    assert "Paramètre modifié." in shown
    section = _section(shown)
    row = section[section.index('data-parameter="spo2_floor"') :]
    assert "Seuil de SpO2" in row
    assert "88 %" in row[: row.index("</tr>")]
    assert copd.pulmonologist.user.get_full_name() in row[: row.index("</tr>")]
    assert "Historique des paramètres" in section
    assert "90 → 88 %" in section
    [stored] = PathwayParameter.objects.all()
    assert (stored.value, stored.reason) == (Decimal(88), "BPCO : hypoxémie chronique")
    record = AuditEvent.objects.get(pk__gt=before, resource_type="PathwayParameter")
    assert (record.action, record.entry_point, record.patient_id, record.client_address) == (
        "update", "web", copd.patient.pk, "192.0.2.9",
    )  # fmt: skip


def test_the_section_shows_defaults_bounds_and_units_in_english(copd):
    page = _page(_logged_in(copd.nurse.user, "en"), copd)

    section = _section(page)
    assert "Monitoring parameters" in section
    assert "SpO2 floor" in section
    assert "Heart rate ceiling" in section
    assert "90 % <em>(default)</em>" in section
    assert "80 – 95 %" in section
    assert "120 /min <em>(default)</em>" in section


def test_the_form_offers_only_the_parameters_the_user_may_set(copd):
    nurse = _section(_page(_logged_in(copd.nurse.user), copd))
    gp = _section(_page(_logged_in(copd.gp.user), copd))

    assert '<option value="heart_rate_ceiling">' in nurse
    assert '<option value="spo2_floor">' not in nurse
    assert '<option value="spo2_floor">' in gp


def test_a_value_outside_the_bounds_is_refused_with_a_message_naming_them(copd):
    client = _logged_in(copd.gp.user)

    answer = client.post(
        f"/care-pathways/{copd.pathway.pk}/parameters/",
        {"name": "spo2_floor", "value": "75", "reason": "test"},
        follow=True,
    )

    shown = html.unescape(answer.content.decode())
    assert "Non modifié : value: 75 est hors des bornes de spo2_floor : [80, 95] %" in shown
    assert PathwayParameter.objects.count() == 0


def test_a_decimal_comma_is_read_as_french_write_it(copd):
    _logged_in(copd.nurse.user).post(
        f"/care-pathways/{copd.pathway.pk}/parameters/",
        {"name": "heart_rate_ceiling", "value": "125,5", "reason": "tachycarde habituel"},
    )

    assert PathwayParameter.objects.get().value == 125.5


def test_a_member_without_the_role_is_refused_and_the_refusal_recorded(copd):
    answer = _logged_in(copd.nurse.user).post(
        f"/care-pathways/{copd.pathway.pk}/parameters/",
        {"name": "spo2_floor", "value": "88", "reason": "test"},
        follow=True,
    )

    assert "Non modifié : only a member" in html.unescape(answer.content.decode())
    assert PathwayParameter.objects.count() == 0
    assert AuditEvent.objects.filter(
        resource_type="PathwayParameter", outcome="denied", patient_id=copd.patient.pk
    ).exists()


def test_someone_who_may_not_see_the_patient_gets_the_404_of_a_missing_pathway(copd):
    client = _logged_in(copd.outsider.user)
    body = {"name": "spo2_floor", "value": "88", "reason": "test"}

    refused = client.post(f"/care-pathways/{copd.pathway.pk}/parameters/", body)
    missing = client.post(f"/care-pathways/{10**9}/parameters/", body)

    assert refused.status_code == missing.status_code == 404
    assert PathwayParameter.objects.count() == 0
    assert AuditEvent.objects.filter(
        resource_type="PathwayParameter", outcome="denied", patient_id=copd.patient.pk
    ).exists()


def test_the_patients_own_account_is_refused_as_on_every_care_team_page(db):
    copd_publish()
    account = get_user_model().objects.create_user(username="portal-copd")
    scene = copd_scene(user=account)
    client = _logged_in(account)
    body = {"name": "heart_rate_ceiling", "value": "130", "reason": "test"}

    refused = client.post(f"/care-pathways/{scene.pathway.pk}/parameters/", body)
    beyond = client.post(f"/care-pathways/{10**30}/parameters/", body)

    assert refused.status_code == beyond.status_code == 404
    assert PathwayParameter.objects.count() == 0
    assert AuditEvent.objects.filter(
        actor=account, action="update", outcome="denied", patient_id=scene.patient.pk
    ).exists()


def test_the_history_shows_every_change_newest_first(copd):
    for value, reason in (("88", "first"), ("87", "second")):
        parameter_set(
            user=copd.gp.user, care_pathway_id=copd.pathway.pk, name="spo2_floor",
            value=value, reason=reason,
        )  # fmt: skip

    section = _section(_page(_logged_in(copd.nurse.user), copd))

    history = section[section.index("parameter-history") :]
    assert history.index("88 → 87 %") < history.index("90 → 88 %")
    assert "second" in history
    assert "first" in history


def test_a_pathway_declaring_no_parameter_shows_no_section(scene: Scene):
    page = _page(_logged_in(scene.nurse.user), scene)  # type: ignore[arg-type]

    assert 'class="parameters"' not in page
