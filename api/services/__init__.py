"""The API's own writes: idempotency records, personal tokens, platform accounts."""
