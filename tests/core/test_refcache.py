"""Reference versions (core.refcache): read on every use, except once per read-only request."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from catalogs.models import Genre
from core.middleware import ReferenceVersionsMiddleware
from core.refcache import reference_version, versions_read_once

pytestmark = pytest.mark.django_db


def version_queries(action) -> int:
    with CaptureQueriesContext(connection) as captured:
        action()
    return sum("core_referenceversion" in query["sql"] for query in captured.captured_queries)


def test_each_use_reads_the_version_and_sees_a_change_at_once():
    before = reference_version("titles")
    assert version_queries(lambda: reference_version("titles")) == 1
    Genre.objects.create(name="Western")

    assert reference_version("titles") != before


def test_within_read_once_each_group_is_read_once():
    with versions_read_once():
        # every group's version in the block's first query, none after it
        assert version_queries(lambda: [reference_version("titles"), reference_version("titles"), reference_version("catalog")]) == 1
        first = reference_version("titles")
    assert version_queries(lambda: reference_version("titles")) == 1  # the block is over
    assert reference_version("titles") == first


@pytest.mark.parametrize("method, reads", [("get", 1), ("head", 1), ("post", 2), ("patch", 2)])
def test_only_get_and_head_requests_read_versions_once(method, reads):
    def view(request):
        reference_version("titles")
        reference_version("titles")
        return None

    middleware = ReferenceVersionsMiddleware(view)
    request = getattr(RequestFactory(), method)("/anything/")

    assert version_queries(lambda: middleware(request)) == reads


def test_a_first_query_can_bring_the_blocks_versions_in_the_same_round_trip():
    from core.refcache import fetch_one_reading_versions

    keeps_versions = connection.vendor == "postgresql"
    with versions_read_once():
        with CaptureQueriesContext(connection) as captured:
            assert fetch_one_reading_versions("SELECT %s", [7]) == (7,)
        assert version_queries(lambda: reference_version("titles")) == 0  # already read with the first query
        assert sum("core_referenceversion" in query["sql"] for query in captured.captured_queries) == int(keeps_versions)
        # Once read, a later first-query-like call reads nothing more.
        assert version_queries(lambda: fetch_one_reading_versions("SELECT %s", [8])) == 0
    assert version_queries(lambda: fetch_one_reading_versions("SELECT %s", [9])) == 0  # outside a block: just the query
