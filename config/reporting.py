"""What Django's error reports (the DEBUG page, the mails to ADMINS) may show."""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class SecretsHiddenReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, also hiding settings (and keys of dict settings) that are or hold
    connection URLs, hosts and addresses: DATABASE_URL, REDIS_URL, CELERY_BROKER_URL,
    CACHES' LOCATION, CHANNEL_LAYERS' hosts, each of which may carry a password."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN|DATABASE|REDIS|BROKER|HOST|"
        "LOCATION|ADDRESS|CONFIG",
        flags=re.IGNORECASE,
    )
