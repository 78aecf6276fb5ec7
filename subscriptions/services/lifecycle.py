"""Placeholder: the subscription life cycle actions are added here."""
