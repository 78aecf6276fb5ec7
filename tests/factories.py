"""factory_boy factories. Customers are built through the sign-up service, as in real life."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts import services
from accounts.models import AccountsReceivable
from core.choices import Channel

PORTAL_PASSWORD = "correct-horse-battery"


class StaffUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@ott.example")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "staff-password-1")

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        if extracted:
            user.groups.add(Group.objects.get(name=extracted))
        user.save()


def customer_create(
    *,
    first_name: str = "Maria",
    last_name: str | None = None,
    email: str | None = None,
    mobile_phone: str = "",
    classification: str = "NORMAL",
    portal: bool = True,
    password: str = PORTAL_PASSWORD,
    country: str = "CY",
    **contact,
) -> AccountsReceivable:
    """Sign up a customer (with a portal login unless ``portal=False``) and return the account."""
    customer_create.counter += 1
    n = customer_create.counter
    return services.customer_sign_up(
        contact={
            "first_name": first_name,
            "last_name": last_name or f"Customer{n}",
            "email": email or f"customer{n}@example.com",
            "mobile_phone": mobile_phone,
            **contact,
        },
        address={"kind": "BILLING", "line1": f"{n} Main Street", "city": "Nicosia", "postal_code": "1000", "country": country},
        classification=classification,
        password=password if portal else None,
        channel=Channel.SYSTEM,
    )


customer_create.counter = 0
