"""Every write to subscriptions: ``actions`` (the action machinery, subscription creation
and the PPV order), ``lifecycle`` (activate, rest, services, installed items, ...),
``devices`` (devices, pairing, streams, viewing events)."""
