"""Steps shared by the payments tests: the customer's card form and a PPV order."""

from __future__ import annotations

from billing.models import Invoice
from catalogs.models import ContentTitle
from subscriptions.services.orders import usage_order_place

VISA = "4242424242424242"
DECLINED_ON_CHARGE = "4000000000000341"  # saves fine, every charge is declined
NEEDS_3DS = "4000002500003155"


def save_card(portal, browser, number: str, *, authenticate: bool = False) -> dict:
    """The portal's "add a card" page: our API gives the client secret, Stripe.js takes the card."""
    setup = portal.post("/api/v1/payment-methods/cards/", format="json")
    assert setup.status_code == 201, setup.content
    result = browser.card_setup_confirm(setup_intent=setup.json()["setup_intent"], client_secret=setup.json()["client_secret"],
                                        number=number)
    if authenticate:
        assert result["status"] == "requires_action"
        browser.card_setup_authenticate(setup_intent=setup.json()["setup_intent"], client_secret=setup.json()["client_secret"])
    confirmed = portal.post("/api/v1/payment-methods/cards/confirm/", {"setup_intent": setup.json()["setup_intent"]}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return confirmed.json()


def order_movie(world, django_capture_on_commit_callbacks, code: str = "LOTR") -> Invoice:
    with django_capture_on_commit_callbacks(execute=True):
        usage_order_place(subscription=world["subscription"], title=ContentTitle.objects.get(code=code))
    return Invoice.objects.filter(account=world["account"]).latest("pk")
