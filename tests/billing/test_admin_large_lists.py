"""Change lists over tables that grow without bound (usage records here; invoices, the
journal, payments, provisioning requests and the audit log use the same paginator) never
count the whole table: unfiltered, PostgreSQL's estimate of its rows; filtered, at most
one more row than the cap is counted (DESIGN.md §5: no full-table COUNT on 1 M UDRs)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.admin import UsageDetailRecordAdmin
from billing.models import UsageDetailRecord
from core.admin import CappedCountPaginator
from subscriptions.services.orders import usage_order_place

pytestmark = pytest.mark.django_db
UDRS = "/admin/billing/usagedetailrecord/"
UNCAPPED_COUNT = re.compile(r'SELECT COUNT\(\*\).*FROM "billing_usagedetailrecord"', re.S)


@pytest.fixture
def three_orders(subscriber, movie) -> list[UsageDetailRecord]:
    start = datetime(2026, 11, 20, 20, 0, tzinfo=ZoneInfo("Europe/Nicosia"))
    for hour, code in enumerate(("LOTR", "LIMITLESS", "SERENDIPITY")):
        with time_machine.travel(start + timedelta(hours=hour)):
            usage_order_place(subscription=subscriber, title=movie(code))
    return list(UsageDetailRecord.objects.all())


def udr_list(user, **params):
    client = Client()
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(UDRS, params)
    assert response.status_code == 200
    counts = [query["sql"] for query in captured.captured_queries if UNCAPPED_COUNT.search(query["sql"])]
    assert counts and all(" LIMIT " in sql for sql in counts), counts  # every count is capped
    return response


def test_a_filtered_list_counts_up_to_the_cap_and_says_more_than(three_orders, agent, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    monkeypatch.setattr(UsageDetailRecordAdmin, "list_per_page", 1)
    response = udr_list(agent, state__exact="BILLED")
    assert "more than 2 usage detail records" in response.content.decode()
    cl = response.context["cl"]
    assert cl.paginator.num_pages == 2 and len(cl.result_list) == 1  # the cap's rows, page by page
    assert [udr.pk for udr in udr_list(agent, state__exact="BILLED", p=2).context["cl"].result_list] == [three_orders[1].pk]


def test_under_the_cap_the_count_is_exact(three_orders, agent, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 10)
    page = udr_list(agent, state__exact="BILLED").content.decode()
    assert "3 usage detail records" in page and "more than" not in page and "about" not in page
    assert "0 usage detail records" in udr_list(agent, state__exact="REJECTED").content.decode()


def test_the_whole_list_uses_the_databases_estimate_and_still_pages(three_orders, agent, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 2)
    monkeypatch.setattr(UsageDetailRecordAdmin, "list_per_page", 1)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE billing_usagedetailrecord")
        client = Client()
        client.force_login(agent)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(UDRS)
        assert not [query for query in captured.captured_queries if UNCAPPED_COUNT.search(query["sql"])]  # no COUNT at all
        assert "about 3 usage detail records" in response.content.decode()
    else:  # SQLite keeps no estimate: the capped count
        response = udr_list(agent)
        assert "more than 2 usage detail records" in response.content.decode()
    assert [udr.pk for udr in response.context["cl"].result_list] == [three_orders[0].pk]  # newest first, one a page


def test_the_search_finds_a_record_by_its_exact_external_id_with_the_index(three_orders, agent):
    wanted = three_orders[1]
    client = Client()
    client.force_login(agent)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(UDRS, {"q": f"  {wanted.external_id} "})
    assert [udr.pk for udr in response.context["cl"].result_list] == [wanted.pk]
    searches = [query["sql"] for query in captured.captured_queries if "external_id" in query["sql"] and "WHERE" in query["sql"]]
    assert searches and not any("UPPER(" in sql for sql in searches)  # an indexable comparison, not iexact
    assert list(client.get(UDRS, {"q": wanted.external_id[:-1]}).context["cl"].result_list) == []  # no partial matches


def test_the_filters_offer_no_counts_of_the_whole_table(three_orders, agent):
    client = Client()
    client.force_login(agent)
    page = client.get(UDRS).content.decode()
    assert "Show counts" not in page
    with CaptureQueriesContext(connection) as captured:
        client.get(UDRS, {"_facets": "True"})  # asked for anyway: ignored
    sqls = [query["sql"] for query in captured.captured_queries]
    assert not [sql for sql in sqls if "COUNT(" in sql and "billing_usagedetailrecord" in sql and " LIMIT " not in sql]


def test_a_search_of_an_identifier_of_another_type_finds_nothing_instead_of_failing(three_orders, agent):
    """The provisioning requests are searched by account number, request id (a UUID) or the
    platform's reference: an account number is not a UUID, a UUID is found either case."""
    from provisioning.models import ProvisioningRequest

    client = Client()
    client.force_login(agent)
    requests = "/admin/provisioning/provisioningrequest/"
    request = ProvisioningRequest.objects.filter(kind="PURCHASE_PPV").order_by("pk").first()
    by_account = client.get(requests, {"q": request.account.number})
    assert by_account.status_code == 200 and request in by_account.context["cl"].result_list
    for typed in (str(request.request_id), str(request.request_id).upper()):
        assert list(client.get(requests, {"q": typed}).context["cl"].result_list) == [request]
    assert list(client.get(requests, {"q": "no-such-thing"}).context["cl"].result_list) == []
