import pytest
from django.db import transaction

from core.services import sequence_next

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_rolled_back_number_is_given_again_so_there_are_no_gaps():
    with transaction.atomic():
        assert sequence_next(name="invoice", prefix="INV", padding=4) == "INV0001"
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            assert sequence_next(name="invoice") == "INV0002"
            raise RuntimeError("the invoice could not be posted")
    with transaction.atomic():
        assert sequence_next(name="invoice") == "INV0002"


def test_numbers_need_the_callers_transaction():
    with pytest.raises(RuntimeError):
        sequence_next(name="invoice")


def test_numbers_taken_with_another_read_are_gapless_and_bring_its_rows():
    from core.services import sequence_take_with

    with transaction.atomic():  # the series' first numbers: the row is created on the way
        numbers, rows = sequence_take_with(name="batch", prefix="B-", padding=3, count=2, also=("SELECT %s, %s", [1, 2]))
    assert (numbers, rows) == (["B-001", "B-002"], [(1, 2)])
    with transaction.atomic():
        numbers, rows = sequence_take_with(name="batch", count=3, also=("SELECT 7", []))
    assert (numbers, rows) == (["B-003", "B-004", "B-005"], [(7,)])
    with pytest.raises(RuntimeError), transaction.atomic():  # a rollback gives the numbers back
        sequence_take_with(name="batch", count=1, also=("SELECT 1", []))
        raise RuntimeError
    with transaction.atomic():
        assert sequence_take_with(name="batch", count=1)[0] == ["B-006"]
