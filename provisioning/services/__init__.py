"""Provisioning writes: the outbox (``outbox``), sending (``sending``), reconciliation
(``reconciliation``). Import from the submodules."""
