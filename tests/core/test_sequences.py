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
