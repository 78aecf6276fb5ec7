from django.db import models


class Channel(models.TextChoices):
    """Where a change came from; recorded on every audit row and subscription action."""

    CALL_CENTER = "CALL_CENTER", "Call center (admin)"
    PORTAL = "PORTAL", "Customer portal"
    DEVICE = "DEVICE", "Device"
    SYSTEM = "SYSTEM", "System"
