"""Every write of the outbox and the webhooks."""
