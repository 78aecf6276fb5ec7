from rest_framework.permissions import BasePermission

from .authentication import DevicePrincipal


class IsPortalUser(BasePermission):
    """A customer logged in to the portal (not staff, not a device)."""

    message = "This endpoint is for customers logged in to the portal."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not isinstance(user, DevicePrincipal) and hasattr(user, "portal_user"))


class IsDevice(BasePermission):
    message = "This endpoint is for devices: send 'Authorization: Device <key>'."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, DevicePrincipal)
