"""Every write to billing, one module per area: ``schemes`` (billing term schemes),
``ledger`` (double-entry journal), ``invoicing`` (invoices, credit notes, taxes, usage
billing)."""
