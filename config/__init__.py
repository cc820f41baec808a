"""The project's wiring. The Celery application is loaded with it (Celery's documented
Django layout), so that `shared_task` jobs and `celery.current_app` use it in every
process; it connects to its broker only when a job is sent."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
