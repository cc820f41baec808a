from __future__ import annotations

from django.apps import AppConfig


class CoordinationConfig(AppConfig):
    name = "coordination"

    def ready(self) -> None:
        # Coordination implements the engine's `task` action and closes a step's open tasks
        # when a pathway leaves it (workflows.actions explains the registry).
        from coordination.services.consent import consent_changed_receive
        from coordination.services.pathways import pathway_move_record
        from coordination.services.tasks import (
            cancel_tasks_of_left_state,
            open_task_for_state,
            patient_access_changed_receive,
        )
        from directory.signals import consent_changed, patient_access_changed
        from workflows import actions

        actions.register_task_handler("coordination", open_task_for_state)
        actions.register_exit_hook("coordination", cancel_tasks_of_left_state)
        # Every move of a care pathway writes its outbox event (timers and tasks_completed
        # move pathways without going through coordination's services).
        actions.register_move_hook("coordination", pathway_move_record)
        # A member who loses access to a patient (left the care team, an objection) gives
        # back the patient's tasks they owned.
        patient_access_changed.connect(
            patient_access_changed_receive, dispatch_uid="coordination.release_lost_tasks"
        )
        # A withdrawn remote-monitoring consent closes the work opened for missing readings.
        consent_changed.connect(
            consent_changed_receive, dispatch_uid="coordination.consent_changed"
        )
