from __future__ import annotations

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api.v1 import (
    alerts,
    definitions,
    directory,
    emergency,
    invitations,
    live,
    parameters,
    pathways,
    patients,
    tasks,
    tokens,
    webhooks,
)

v1 = [
    path("pathway-definitions/", definitions.DefinitionListView.as_view(), name="definitions"),
    path(
        "pathway-definitions/<slug:key>/<int:version>/",
        definitions.DefinitionDetailView.as_view(),
        name="definition-detail",
    ),
    path(
        "pathway-definitions/<slug:key>/<int:version>/publish/",
        definitions.DefinitionPublishView.as_view(),
        name="definition-publish",
    ),
    path(
        "pathway-definitions/<slug:key>/<int:version>/retire/",
        definitions.DefinitionRetireView.as_view(),
        name="definition-retire",
    ),
    path(
        "pathway-definitions/<slug:key>/<int:version>/diagram.svg",
        definitions.DefinitionDiagramView.as_view(),
        name="definition-diagram",
    ),
    path("pathways/", pathways.CarePathwayListView.as_view(), name="pathways"),
    path("pathways/<int:pk>/", pathways.CarePathwayDetailView.as_view(), name="pathway-detail"),
    path(
        "pathways/<int:pk>/events/", pathways.CarePathwayEventView.as_view(), name="pathway-events"
    ),
    path(
        "pathways/<int:pk>/history/",
        pathways.CarePathwayHistoryView.as_view(),
        name="pathway-history",
    ),
    path(
        "pathways/<int:pk>/available-events/",
        pathways.CarePathwayAvailableEventsView.as_view(),
        name="pathway-available-events",
    ),
    path(
        "pathways/<int:pk>/diagram.svg",
        pathways.CarePathwayDiagramView.as_view(),
        name="pathway-diagram",
    ),
    path("tasks/", tasks.TaskListView.as_view(), name="tasks"),
    path("tasks/<int:pk>/", tasks.TaskDetailView.as_view(), name="task-detail"),
    *[
        path(f"tasks/<int:pk>/{name}/", view.as_view(), name=f"task-{name}")
        for name, view in tasks.ACTION_VIEWS.items()
    ],
    path("alerts/", alerts.AlertListView.as_view(), name="alerts"),
    path(
        "alerts/<int:pk>/acknowledge/",
        alerts.AlertAcknowledgeView.as_view(),
        name="alert-acknowledge",
    ),
    path("live/tokens/", live.LiveTokenView.as_view(), name="live-tokens"),
    *parameters.urlpatterns,
    *directory.urlpatterns,
    *patients.urlpatterns,
    *webhooks.urlpatterns,
    *emergency.urlpatterns,
    *tokens.urlpatterns,
    *invitations.urlpatterns,
]

app_name = "api"

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file: no inline script. Swagger UI sets
    # inline styles as it renders (no script): allowed on this page only.
    path(
        "docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="api:schema")
        ),
        name="docs",
    ),
]
