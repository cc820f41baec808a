from __future__ import annotations

from django.urls import path

from web import views

app_name = "web"

urlpatterns = [
    path("health/", views.health, name="health"),
    path("", views.pathway_library, name="home"),
    path("pathways/", views.pathway_library, name="pathway-library"),
    path("pathways/<slug:key>/<int:version>/", views.pathway_detail, name="pathway-detail"),
    path(
        "pathways/<slug:key>/<int:version>/diagram.svg",
        views.pathway_diagram,
        name="pathway-diagram",
    ),
]
