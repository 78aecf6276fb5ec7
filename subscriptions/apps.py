from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = "Subscriptions and devices"

    def ready(self) -> None:
        # Importing the action modules registers their behaviors with subscription_act.
        from .services import lifecycle, orders  # noqa: F401
