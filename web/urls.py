from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from web import (
    account,
    alerts,
    care,
    invitations,
    library,
    parameters,
    password_reset,
    portal,
    psc,
    triage,
    views,
)

app_name = "web"

urlpatterns = [
    path("health/", views.health, name="health"),
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="web/login.html"),
        name="login",
    ),
    path("logout/", psc.LogoutView.as_view(), name="logout"),
    path("psc/login/", psc.psc_login, name="psc-login"),
    path("psc/callback/", psc.psc_callback, name="psc-callback"),
    path("password/", account.password_change, name="password-change"),
    # Forgotten passwords (web.password_reset) and invitation links (web.invitations).
    path("password/reset/", password_reset.password_reset, name="password-reset"),
    path("password/reset/sent/", password_reset.password_reset_done, name="password-reset-done"),
    path(
        "password/reset/<uidb64>/<token>/",
        password_reset.password_reset_confirm,
        name="password-reset-confirm",
    ),
    path(
        "password/reset/done/",
        password_reset.password_reset_complete,
        name="password-reset-complete",
    ),
    path("invitation/<str:token>/", invitations.invitation_page, name="invitation"),
    path("worklist/", care.worklist, name="worklist"),
    path("tasks/<int:task_id>/", care.task_detail, name="task-detail"),
    path("tasks/<int:task_id>/act/", care.task_action, name="task-action"),
    path("patients/<int:patient_id>/", care.patient_detail, name="patient-detail"),
    path("patients/<int:patient_id>/break-glass/", care.break_glass, name="break-glass"),
    path(
        "care-pathways/<int:pathway_id>/parameters/",
        parameters.parameter_set_view,
        name="pathway-parameter-set",
    ),
    path("triage/", triage.triage, name="triage"),
    path("alerts/", alerts.alert_inbox, name="alert-inbox"),
    path(
        "alerts/<int:alert_id>/acknowledge/",
        alerts.alert_acknowledge_view,
        name="alert-acknowledge",
    ),
    path("portal/", portal.portal_home, name="portal"),
    path("pathways/", views.pathway_library, name="pathway-library"),
    path("pathways/upload/", library.pathway_upload, name="pathway-upload"),
    path("patients/<int:patient_id>/start/", library.pathway_start, name="pathway-start"),
    path("pathways/<slug:key>/<int:version>/", views.pathway_detail, name="pathway-detail"),
    path(
        "pathways/<slug:key>/<int:version>/publish/",
        library.pathway_status_change,
        {"change": "publish"},
        name="pathway-publish",
    ),
    path(
        "pathways/<slug:key>/<int:version>/retire/",
        library.pathway_status_change,
        {"change": "retire"},
        name="pathway-retire",
    ),
    path(
        "pathways/<slug:key>/<int:version>/diagram.svg",
        views.pathway_diagram,
        name="pathway-diagram",
    ),
]
