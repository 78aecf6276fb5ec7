"""Login throttling: per client address and per login name, so neither a single machine
nor a botnet aimed at one customer can guess passwords quickly."""

import hashlib

from rest_framework.throttling import SimpleRateThrottle


class LoginIpThrottle(SimpleRateThrottle):
    scope = "login_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameThrottle(SimpleRateThrottle):
    scope = "login_username"

    def get_cache_key(self, request, view):
        username = str(request.data.get("email", "")).strip().lower() if hasattr(request, "data") else ""
        if not username:
            return None
        # A digest, not the name: whatever the caller typed (any length, control characters)
        # makes a short, safe cache key.
        return self.cache_format % {"scope": self.scope, "ident": hashlib.sha256(username.encode()).hexdigest()}


class SignUpThrottle(SimpleRateThrottle):
    scope = "signup"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
