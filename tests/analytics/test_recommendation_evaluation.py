"""Offline evaluation of the recommendations on a small known history (the worked example
in docs/analytics.md): each customer's last watched title is held out, the model is built
on the rest, and precision@k / recall@k are compared with the popularity list alone."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from analytics.services.recommendations import BOUGHT, WATCHED, Evaluation, Interaction, recommendations_evaluate

A, B, C, D, P = 1, 2, 3, 4, 5  # A and B go together, C and D go together, P is what everyone watches


def history(*titles: tuple[int, str]) -> dict[int, Interaction]:
    """Titles in the order the customer came to them (day 1, 2, ...)."""
    return {title: Interaction(last=date(2026, 1, day), kind=kind) for day, (title, kind) in enumerate(titles, start=1)}


KNOWN = {
    # buyers who never watched: nothing held out, all of it teaches the model
    1: history((A, BOUGHT), (B, BOUGHT)), 2: history((A, BOUGHT), (B, BOUGHT)),
    3: history((C, BOUGHT), (D, BOUGHT)), 4: history((C, BOUGHT), (D, BOUGHT)),
    # viewers: the last watched title is held out
    11: history((P, WATCHED), (A, WATCHED), (B, WATCHED)),  # B held out; the model finds it from A
    12: history((P, WATCHED), (C, WATCHED), (D, WATCHED)),  # D held out; found from C, popularity misses it
    13: history((P, WATCHED), (A, WATCHED), (D, WATCHED)),  # D held out; nobody could guess it
    14: history((P, WATCHED)),  # one title: nothing left to learn from, not evaluated
}


def test_precision_and_recall_against_the_popularity_baseline():
    # When the model is built without the held-out titles and asked for 2 titles per customer
    result = recommendations_evaluate(interactions=KNOWN, k=2)

    # Then (docs/analytics.md): the model finds B for 11 and D for 12 (1 hit of 2 each, 0 for
    # 13); the popularity list (A, C, P, B, D) finds only B for 11
    assert result == Evaluation(customers=3, k=2, precision=Decimal("0.3333"), recall=Decimal("0.6667"),
                                baseline_precision=Decimal("0.1667"), baseline_recall=Decimal("0.3333"))


def test_with_ten_titles_a_five_title_catalog_is_all_found():
    # With k = 10 every unseen title of this tiny catalog is listed, by both
    result = recommendations_evaluate(interactions=KNOWN)

    assert (result.k, result.precision, result.recall, result.baseline_precision, result.baseline_recall) == (
        10, Decimal("0.1000"), Decimal("1.0000"), Decimal("0.1000"), Decimal("1.0000"))
