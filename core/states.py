"""Explicit state machines.

A ``StateMachine`` is a readable table of actions: the states each may start from and the
state it leads to. Services ask it whether an action is allowed before they change a row,
so the rules live in one place and the admin and the API cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.exceptions import TransitionNotAllowed


@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str


@dataclass(frozen=True)
class StateMachine:
    name: str
    transitions: dict[str, Transition] = field(default_factory=dict)

    @classmethod
    def build(cls, name: str, table: Iterable[tuple[str, Iterable[str], str]]) -> StateMachine:
        return cls(name, {action: Transition(action, frozenset(sources), target) for action, sources, target in table})

    def allows(self, action: str, state: str) -> bool:
        return state in self.transitions[action].sources

    def target(self, action: str, state: str) -> str:
        """The state ``action`` leads to from ``state``; raises if it may not start there."""
        transition = self.transitions[action]
        if state not in transition.sources:
            allowed = ", ".join(sorted(transition.sources))
            raise TransitionNotAllowed(
                f"Cannot {action} a {self.name} that is {state}; allowed from: {allowed}.",
                code="transition_not_allowed",
            )
        return transition.target

    def actions_from(self, state: str) -> list[str]:
        return [action for action, transition in self.transitions.items() if state in transition.sources]
