"""The cycle collector pause around bulk chunks (core.memory)."""

import gc

import pytest

from core.memory import cycle_collector_paused


def test_the_collector_is_off_inside_and_on_again_after(collector_on):
    with cycle_collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_switches_it_back_on(collector_on):
    with pytest.raises(ZeroDivisionError), cycle_collector_paused():
        1 / 0
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off(collector_on):
    gc.disable()
    with cycle_collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_cycles_made_during_the_pause_are_collected_after_it(collector_on):
    class Node:
        pass

    with cycle_collector_paused():
        node = Node()
        node.self = node
        before = sum(isinstance(obj, Node) for obj in gc.get_objects())
        del node
    assert before == 1
    gc.collect()
    assert not any(isinstance(obj, Node) for obj in gc.get_objects())
