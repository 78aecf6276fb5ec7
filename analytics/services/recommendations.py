"""Recommendations for the portal's home page: item-to-item similarity over co-viewing,
with a popularity fallback (algorithm, filters and offline figures: docs/analytics.md).

Two titles are alike when the same customers watched or bought both: the **cosine** of
their customer sets, customers of both ÷ √(customers of one × customers of the other).
A customer is recommended the titles most alike to what they watched or bought most
recently (the sum of the similarities to those titles), each with the title that
contributed most as its reason ("Because you watched Limitless"); the rest of the list,
and the whole list of a customer with no history, is what most customers watched or
bought this week ("Popular this week").

The similarity table is rebuilt by a scheduled job (``recommendations_rebuild``) from the
rollups and the orders, so a request only reads it. The same pure functions
(``similarities_compute``, ``recommend``) serve the live lists and the offline evaluation
(``recommendations_evaluate``), so the figure ``make bench`` prints measures what
customers get.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import combinations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from billing.models import UsageDetailRecord
from core.memory import cycle_collector_paused

from ..models import AccountViewingDay, TitlePopularity, TitleSimilarity

WINDOW_DAYS = 365  # tastes from the last year; older history says little about today
POPULAR_DAYS = 7  # "Popular this week"
NEIGHBOURS = 50  # similar titles kept per title
MIN_COMMON_CUSTOMERS = 2  # one customer in common is a coincidence, not a similarity
BASKET_LIMIT = 100  # a customer's most recent titles counted (a binge-watcher must not weigh like a crowd)
SEEDS = 20  # the most recent titles a customer's recommendations start from
EVALUATION_K = 10
UNCOUNTED_UDR_STATES = (UsageDetailRecord.State.REJECTED, UsageDetailRecord.State.CANCELLED)

WATCHED, BOUGHT = "WATCHED", "BOUGHT"
SIMILAR, POPULAR = "SIMILAR", "POPULAR"


@dataclass(frozen=True)
class Interaction:
    """A customer's history with one title: when last, and whether they watched it (a
    purchase never played is BOUGHT)."""

    last: date
    kind: str


@dataclass(frozen=True)
class Pick:
    title_id: int
    kind: str  # SIMILAR or POPULAR
    score: float
    because_id: int | None = None
    because_kind: str | None = None


Neighbours = dict[int, list[tuple[int, float]]]


# --- the algorithm (pure) -------------------------------------------------------------------

def similarities_compute(*, baskets: dict[int, set[int]], neighbours: int = NEIGHBOURS,
                         min_customers: int = MIN_COMMON_CUSTOMERS) -> dict[int, list[tuple[int, float, int]]]:
    """Per title, its ``neighbours`` most similar titles as (title, cosine, customers in
    common), best first (ties: more customers in common, then the lower id, so a rebuild is
    reproducible). ``baskets`` maps a customer to the titles they watched or bought."""
    customers_of: Counter[int] = Counter()
    together: Counter[tuple[int, int]] = Counter()
    for titles in baskets.values():
        ordered = sorted(titles)
        customers_of.update(ordered)
        together.update(combinations(ordered, 2))
    found: dict[int, list[tuple[int, float, int]]] = defaultdict(list)
    for (first, second), common in together.items():
        if common < min_customers:
            continue
        score = round(common / math.sqrt(customers_of[first] * customers_of[second]), 6)
        found[first].append((second, score, common))
        found[second].append((first, score, common))
    return {title: sorted(similar, key=lambda row: (-row[1], -row[2], row[0]))[:neighbours] for title, similar in found.items()}


def recommend(*, history: list[tuple[int, str]], neighbours: Neighbours, popular: list[int], limit: int,
              allowed: set[int] | None = None) -> list[Pick]:
    """A customer's list: titles similar to their ``SEEDS`` most recent ones (``history``:
    (title, WATCHED/BOUGHT), most recent first), scored by the sum of the similarities and
    explained by the title that contributed most (the more recent on a tie); then the
    ``popular`` titles (best first). Never a title in their history; only ``allowed`` ones
    when given (what their screen can show and they can order)."""
    seen = {title for title, _kind in history}
    scores: dict[int, float] = defaultdict(float)
    because: dict[int, tuple[float, int, str]] = {}
    for title, kind in history[:SEEDS]:
        for similar, score in neighbours.get(title, ()):
            if similar in seen or (allowed is not None and similar not in allowed):
                continue
            scores[similar] += score
            if similar not in because or score > because[similar][0]:
                because[similar] = (score, title, kind)
    ranked = sorted(scores, key=lambda title: (-round(scores[title], 6), title))[:limit]
    picks = [Pick(title_id=title, kind=SIMILAR, score=round(scores[title], 6), because_id=because[title][1],
                  because_kind=because[title][2]) for title in ranked]
    chosen = seen | set(ranked)
    for title in popular:
        if len(picks) >= limit:
            break
        if title not in chosen and (allowed is None or title in allowed):
            picks.append(Pick(title_id=title, kind=POPULAR, score=0.0))
            chosen.add(title)
    return picks


# --- what customers did ---------------------------------------------------------------------

def interactions_load(*, since: date, until: date, account_ids: set[int] | None = None) -> dict[int, dict[int, Interaction]]:
    """Per customer and title, from the viewing rollup and the orders (not rejected or
    cancelled) between two days: the last day and whether they watched it."""
    start = timezone.make_aware(datetime.combine(since, datetime.min.time()))
    end = timezone.make_aware(datetime.combine(until + timedelta(days=1), datetime.min.time()))
    viewing = AccountViewingDay.objects.filter(day__range=(since, until))
    orders = (UsageDetailRecord.objects.filter(usage_at__gte=start, usage_at__lt=end, title__isnull=False)
              .exclude(state__in=UNCOUNTED_UDR_STATES))
    if account_ids is not None:
        viewing, orders = viewing.filter(account_id__in=account_ids), orders.filter(account_id__in=account_ids)
    found: dict[int, dict[int, Interaction]] = defaultdict(dict)
    for account_id, title_id, last in orders.values("account_id", "title_id").annotate(last=Max("usage_at")).values_list(
            "account_id", "title_id", "last").order_by().iterator(chunk_size=10_000):
        found[account_id][title_id] = Interaction(last=timezone.localdate(last), kind=BOUGHT)
    for account_id, title_id, last in viewing.values("account_id", "title_id").annotate(last=Max("day")).values_list(
            "account_id", "title_id", "last").order_by().iterator(chunk_size=10_000):
        bought = found[account_id].get(title_id)
        found[account_id][title_id] = Interaction(last=max(last, bought.last) if bought else last, kind=WATCHED)
    return dict(found)


def history_of(interactions: dict[int, Interaction]) -> list[tuple[int, str]]:
    """(title, kind), most recent first (ties: the higher id, i.e. the newer title)."""
    ordered = sorted(interactions.items(), key=lambda item: (item[1].last, item[0]), reverse=True)
    return [(title, interaction.kind) for title, interaction in ordered]


def _baskets(interactions: dict[int, dict[int, Interaction]]) -> dict[int, set[int]]:
    return {account_id: {title for title, _kind in history_of(titles)[:BASKET_LIMIT]}
            for account_id, titles in interactions.items()}


def _popularity(interactions: dict[int, dict[int, Interaction]], *, since: date | None = None) -> Counter[int]:
    counts: Counter[int] = Counter()
    for titles in interactions.values():
        counts.update(title for title, interaction in titles.items() if since is None or interaction.last >= since)
    return counts


def popular_order(counts: Counter[int]) -> list[int]:
    return sorted(counts, key=lambda title: (-counts[title], title))


# --- the scheduled rebuild ------------------------------------------------------------------

@dataclass(frozen=True)
class Rebuilt:
    customers: int
    similarities: int
    popular_titles: int


def _replace(model, rows: list, unique: list[str], fields: list[str]) -> None:
    """Upsert on the unique key and delete the rows no longer there: a rebuild of the same
    history leaves the same rows (same ids)."""
    model.objects.bulk_create(rows, update_conflicts=True, unique_fields=unique, update_fields=fields, batch_size=2000)
    attnames = [model._meta.get_field(key).attname for key in unique]
    keep = {tuple(getattr(row, attname) for attname in attnames) for row in rows}
    stale = [pk for pk, *key in model.objects.values_list("pk", *attnames).iterator(chunk_size=10_000) if tuple(key) not in keep]
    for start in range(0, len(stale), 10_000):
        model.objects.filter(pk__in=stale[start:start + 10_000]).delete()


def recommendations_rebuild(*, today: date | None = None) -> Rebuilt:
    """Recompute the title similarities (from the last ``WINDOW_DAYS``) and this week's
    popularity, replacing the tables in one transaction (idempotent)."""
    today = today or timezone.localdate()
    with cycle_collector_paused():  # every customer's interactions live until the end (core.memory)
        return _rebuild(today)


def _rebuild(today: date) -> Rebuilt:
    interactions = interactions_load(since=today - timedelta(days=WINDOW_DAYS - 1), until=today)
    similar = similarities_compute(baskets=_baskets(interactions))
    popular = _popularity(interactions, since=today - timedelta(days=POPULAR_DAYS - 1))
    now = timezone.now()
    similarity_rows = [TitleSimilarity(title_id=title, similar_id=other, score=score, customers=common, computed_at=now)
                       for title, rows in similar.items() for other, score, common in rows]
    popularity_rows = [TitlePopularity(title_id=title, customers=count, computed_at=now) for title, count in popular.items()]
    with transaction.atomic():
        _replace(TitleSimilarity, similarity_rows, ["title", "similar"], ["score", "customers", "computed_at"])
        _replace(TitlePopularity, popularity_rows, ["title"], ["customers", "computed_at"])
    return Rebuilt(customers=len(interactions), similarities=len(similarity_rows), popular_titles=len(popularity_rows))


# --- offline evaluation ---------------------------------------------------------------------

def _rate(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Evaluation:
    customers: int  # evaluated (a watched title held out and something left to learn from)
    k: int
    precision: Decimal
    recall: Decimal
    baseline_precision: Decimal
    baseline_recall: Decimal


def _holdout(interactions: dict[int, dict[int, Interaction]], holdout: int) -> tuple[dict[int, dict[int, Interaction]],
                                                                                      dict[int, set[int]]]:
    train, held = {}, {}
    for account_id, titles in interactions.items():
        watched = [title for title, kind in history_of(titles) if kind == WATCHED][:holdout]
        if watched and len(titles) > len(watched):
            held[account_id] = set(watched)
            train[account_id] = {title: value for title, value in titles.items() if title not in held[account_id]}
        else:
            train[account_id] = titles
    return train, held


def recommendations_evaluate(*, interactions: dict[int, dict[int, Interaction]] | None = None, today: date | None = None,
                             k: int = EVALUATION_K, holdout: int = 1) -> Evaluation:
    """Hold out each customer's ``holdout`` most recently watched titles, build the model on
    everything else, and measure how many of the held-out titles each customer's top ``k``
    finds: precision@k = hits ÷ k, recall@k = hits ÷ held out, averaged over the customers
    evaluated; the same for the popularity list alone (the baseline). Offline, so no
    screen or catalog filter applies."""
    if interactions is None:
        today = today or timezone.localdate()
        interactions = interactions_load(since=today - timedelta(days=WINDOW_DAYS - 1), until=today)
    train, held = _holdout(interactions, holdout)
    similar = similarities_compute(baskets=_baskets(train))
    neighbours = {title: [(other, score) for other, score, _common in rows] for title, rows in similar.items()}
    popular = popular_order(_popularity(train))
    precision = recall = baseline_precision = baseline_recall = 0.0
    for account_id, expected in held.items():
        history = history_of(train[account_id])
        picks = {pick.title_id for pick in recommend(history=history, neighbours=neighbours, popular=popular, limit=k)}
        seen = set(train[account_id])
        baseline = set([title for title in popular if title not in seen][:k])
        precision += len(picks & expected) / k
        recall += len(picks & expected) / len(expected)
        baseline_precision += len(baseline & expected) / k
        baseline_recall += len(baseline & expected) / len(expected)
    count = len(held) or 1
    return Evaluation(customers=len(held), k=k, precision=_rate(precision / count), recall=_rate(recall / count),
                      baseline_precision=_rate(baseline_precision / count), baseline_recall=_rate(baseline_recall / count))
