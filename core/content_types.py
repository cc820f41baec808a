"""Moving models between apps without moving their tables (SeparateDatabaseAndState): the
content types follow the models, so the permissions, object permissions and admin log
entries attached to them follow too."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def content_types_moved(source: str, target: str, models: list[str]) -> migrations.RunPython:
    """The migration operation that relabels the content types of `models` (lower-case model
    names) from app `source` to app `target`, and back when reversed. A database created
    after the move has none to relabel: Django creates them after migrating."""

    def relabel(frm: str, to: str) -> Any:
        def run(apps: Any, schema_editor: Any) -> None:
            content_type = apps.get_model("contenttypes", "ContentType")
            alias = schema_editor.connection.alias
            for model in models:
                moved = content_type.objects.using(alias).filter(app_label=frm, model=model)
                if not moved.exists():
                    continue
                # One made for the new label before this ran would collide: the old one,
                # with the permissions attached to it, wins.
                content_type.objects.using(alias).filter(app_label=to, model=model).delete()
                moved.update(app_label=to)

        return run

    return migrations.RunPython(relabel(source, target), relabel(target, source), elidable=False)
