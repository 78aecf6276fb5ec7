from django.db import models


class Channel(models.TextChoices):
    """Where a change came from; recorded on every audit row and subscription action."""

    CALL_CENTER = "CALL_CENTER", "Call center (admin)"
    PORTAL = "PORTAL", "Customer portal"
    DEVICE = "DEVICE", "Device"
    SYSTEM = "SYSTEM", "System"


class Screen(models.TextChoices):
    """The kinds of screen a title can be offered on (multiscreen catalog) and devices have."""

    SET_TOP_BOX = "SET_TOP_BOX", "Set-top box"
    SMART_TV = "SMART_TV", "Smart TV"
    MOBILE = "MOBILE", "Mobile"
    WEB = "WEB", "Web"


class LifecycleState(models.TextChoices):
    """The configuration life cycle CRM.COM uses for price plans and catalogs."""

    DRAFT = "DRAFT", "Draft"
    EFFECTIVE = "EFFECTIVE", "Effective"
    NOT_EFFECTIVE = "NOT_EFFECTIVE", "Not effective"
    CANCELLED = "CANCELLED", "Cancelled"
