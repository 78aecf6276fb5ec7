"""Provisioning providers: the content platforms (Nagra) that receive what customers buy.

The provisioning issue adds credentials, distributors, requests (the outbox) and the SOAP
client; catalogs already need to name the provider their services are provisioned on.
"""

from django.db import models

from core.choices import LifecycleState


class ProvisioningProvider(models.Model):
    class Protocol(models.TextChoices):
        NAGRA_MEDIA_LIVE = "NAGRA_MEDIA_LIVE", "Nagra Media Live Platform"

    name = models.CharField(max_length=100, unique=True)
    protocol = models.CharField(max_length=32, choices=Protocol.choices, default=Protocol.NAGRA_MEDIA_LIVE)
    endpoint = models.URLField(max_length=300, help_text="WSDL address, e.g. .../smsservice_1.2?wsdl")
    encoding = models.CharField(max_length=16, default="UTF-8")
    state = models.CharField(max_length=16, choices=[(LifecycleState.EFFECTIVE, "Effective"), (LifecycleState.NOT_EFFECTIVE, "Not effective")], default=LifecycleState.EFFECTIVE)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
