from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.choices import Channel


class NumberSequence(models.Model):
    """A named counter for document numbers (accounts, invoices, credit notes).

    Taken under a row lock inside the caller's transaction, so numbers are gapless: a
    rolled-back transaction gives its number back. ``max + 1`` is never used.
    """

    name = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16, blank=True)
    padding = models.PositiveSmallIntegerField(default=6)
    next_value = models.PositiveBigIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.name} (next {self.prefix}{self.next_value:0{self.padding}d})"


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an ``Idempotency-Key``, replayed for repeats."""

    class State(models.TextChoices):
        IN_PROGRESS = "IN_PROGRESS", "In progress"
        COMPLETED = "COMPLETED", "Completed"

    scope = models.CharField(max_length=128, help_text="Who sent the key: a user, a device or an anonymous client.")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="uniq_idempotency_scope_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} ({self.state})"


class AuditEntry(models.Model):
    """Who changed what, when and through which channel: every change to prices, rates and
    configuration states is written here by the service that makes it."""

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_pk = models.CharField(max_length=64)
    target = GenericForeignKey("content_type", "object_pk")
    object_repr = models.CharField(max_length=200)
    action = models.CharField(max_length=64, help_text="created, updated, set_effective, rejected: set_effective, ...")
    changes = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder, help_text="Field: [old, new].")
    reasons = models.JSONField(default=list, blank=True, help_text="Why an action was rejected.")
    performed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.SYSTEM)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["content_type", "object_pk", "-created_at"], name="audit_object_recent_idx")]

    def __str__(self) -> str:
        return f"{self.object_repr}: {self.action}"


class ReferenceVersion(models.Model):
    """A version of a group of reference tables (the usage catalogs, ...), bumped by a
    PostgreSQL trigger on every statement that writes one of them — ORM, bulk update, raw
    SQL or TRUNCATE alike. ``core.refcache`` keeps a group's data in each process and
    reloads it when the version it reads differs: never stale, without one query per table.

    ``writer`` is a number from a sequence taken by each bump (sequences are not rolled
    back), so a version bumped by a transaction or savepoint that rolled back is never
    mistaken for a later one with the same counter.
    """

    name = models.CharField(max_length=32, primary_key=True)
    counter = models.BigIntegerField(default=0)
    writer = models.BigIntegerField(default=0)

    class Meta:
        default_permissions = ()  # bookkeeping of the triggers: nobody edits it

    def __str__(self) -> str:
        return f"{self.name} v{self.counter}"
