"""What the content platform is told, and how: the one table of the provisioning mapping.

``COMMANDS`` maps each cause (a subscription action, an account change, a reconciliation)
to the commands it may write. The outbox helper (``provisioning.services.outbox``) refuses
a command its cause does not list, so this table and the code cannot drift apart.
``OPERATIONS`` turns each command into its SOAP operation and arguments
(``provisioning/wsdl/smsservice_1.2.wsdl``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .models import ProvisioningRequest

Kind = ProvisioningRequest.Kind

# Causes that are not subscription actions.
ACCOUNT_UPDATE = "ACCOUNT_UPDATE"
ACCOUNT_SUSPEND = "ACCOUNT_SUSPEND"
ACCOUNT_REACTIVATE = "ACCOUNT_REACTIVATE"
ACCOUNT_TERMINATE = "ACCOUNT_TERMINATE"
RECONCILE = "RECONCILE"

# cause                       -> the commands it writes
COMMANDS: dict[str, tuple[str, ...]] = {
    # sign-up: the platform account is created on the account's first activation (a
    # customer who never subscribes never exists on the platform), then each service started
    "ACTIVATE":                 (Kind.CREATE_ACCOUNT, Kind.ADD_ENTITLEMENT),
    "ADD_SERVICE":              (Kind.ADD_ENTITLEMENT,),                        # when the subscription is EFFECTIVE
    "END_RESTING":              (Kind.ADD_ENTITLEMENT,),                        # re-add every rested service
    "SWAP_SERVICE":             (Kind.REMOVE_ENTITLEMENT, Kind.ADD_ENTITLEMENT),
    "REMOVE_SERVICE":           (Kind.REMOVE_ENTITLEMENT,),
    "DEACTIVATE":               (Kind.REMOVE_ENTITLEMENT,),
    "REST":                     (Kind.REMOVE_ENTITLEMENT,),
    "TERMINATE":                (Kind.REMOVE_ENTITLEMENT, Kind.UNPAIR_DEVICE),
    "ADD_SERVICE_USAGE":        (Kind.PURCHASE_PPV,),                           # a PPV order
    "ADD_INSTALLED_ITEM":       (Kind.PAIR_DEVICE,),
    "REMOVE_INSTALLED_ITEM":    (Kind.UNPAIR_DEVICE,),
    "SWAP_INSTALLED_ITEM":      (Kind.SWAP_DEVICE,),
    ACCOUNT_UPDATE:             (Kind.UPDATE_ACCOUNT,),                         # classification changed
    ACCOUNT_REACTIVATE:         (Kind.UPDATE_ACCOUNT,),                         # status ACTIVE again
    ACCOUNT_SUSPEND:            (Kind.SUSPEND_ACCOUNT,),
    ACCOUNT_TERMINATE:          (Kind.CANCEL_ACCOUNT,),
    RECONCILE:                  (Kind.ADD_ENTITLEMENT, Kind.REMOVE_ENTITLEMENT, Kind.PURCHASE_PPV),
}


def _optional(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value not in (None, "")}


# command -> (SOAP operation, its arguments from the request's parameters; requestId is added)
OPERATIONS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    Kind.CREATE_ACCOUNT: ("CreateAccount", lambda p: _optional(accountId=p["account"], name=p.get("name"),
                                                               currency=p.get("currency"), classification=p.get("classification"))),
    Kind.UPDATE_ACCOUNT: ("UpdateAccount", lambda p: _optional(accountId=p["account"], classification=p.get("classification"),
                                                               status=p.get("status"))),
    Kind.SUSPEND_ACCOUNT: ("SuspendAccount", lambda p: {"accountId": p["account"]}),
    Kind.CANCEL_ACCOUNT: ("CancelAccount", lambda p: {"accountId": p["account"]}),
    Kind.ADD_ENTITLEMENT: ("AddEntitlement", lambda p: {"accountId": p["account"], "productId": p["provisioning_id"]}),
    Kind.REMOVE_ENTITLEMENT: ("RemoveEntitlement", lambda p: {"accountId": p["account"], "productId": p["provisioning_id"]}),
    Kind.PURCHASE_PPV: ("PurchasePpvEvent", lambda p: _optional(accountId=p["account"], productId=p["provisioning_id"],
                                                                eventId=p.get("title"), validUntil=p.get("until"))),
    Kind.PAIR_DEVICE: ("PairDevice", lambda p: _optional(accountId=p["account"], serialNumber=p["serial_number"],
                                                         model=p.get("product"))),
    Kind.UNPAIR_DEVICE: ("UnpairDevice", lambda p: {"accountId": p["account"], "serialNumber": p["serial_number"]}),
    Kind.SWAP_DEVICE: ("SwapDevice", lambda p: _optional(accountId=p["account"], oldSerialNumber=p["old_serial_number"],
                                                         newSerialNumber=p["new_serial_number"], model=p.get("product"))),
}


def command_allowed(cause: str, kind: str) -> bool:
    return kind in COMMANDS.get(cause, ())
