"""Every write to payments, one module per area: ``methods`` (payment methods, saving a
card), ``collection`` (taking payments, posting, allocation, cancellation, automatic
collection), ``adjustments`` (refunds, chargebacks, write-offs), ``webhooks`` (gateway
events) and ``dunning``."""
