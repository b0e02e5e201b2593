"""`ToolCallAccumulator`: streamed `ToolCallDelta`s joined by index into `ToolCall`s."""

from __future__ import annotations

import pytest
from forge_core import ToolCall, ToolCallAccumulator, ToolCallDelta


def delta(
    index: int, *, id: str | None = None, name: str | None = None, arguments: str = ""
) -> ToolCallDelta:
    return ToolCallDelta(index=index, id=id, name=name, arguments=arguments)


def test_two_identical_calls_in_one_answer_stay_two_calls() -> None:
    calls = ToolCallAccumulator()
    calls.add([delta(0, id="call_a", name="add", arguments='{"a": 1, ')])
    calls.add([delta(1, id="call_b", name="add", arguments='{"a": 1, ')])
    calls.add([delta(0, arguments='"b": 2}'), delta(1, arguments='"b": 2}')])
    assert calls.calls() == [
        ToolCall(id="call_a", name="add", arguments={"a": 1, "b": 2}),
        ToolCall(id="call_b", name="add", arguments={"a": 1, "b": 2}),
    ]
    assert len(calls) == 2


def test_a_name_and_id_repeated_on_every_fragment_are_taken_once() -> None:
    # llama-cpp-python's server repeats the name on each fragment of one call.
    calls = ToolCallAccumulator()
    for piece in ('{"city"', ': "Par', 'is"}'):
        calls.add([delta(0, id="call_x", name="weather", arguments=piece)])
    assert calls.calls() == [ToolCall(id="call_x", name="weather", arguments={"city": "Paris"})]


def test_the_first_non_empty_id_and_name_win() -> None:
    calls = ToolCallAccumulator()
    calls.add([delta(0, id="", name="", arguments="{")])
    calls.add([delta(0, id="call_1", name="first")])
    calls.add([delta(0, id="call_2", name="second", arguments="}")])
    assert calls.calls() == [ToolCall(id="call_1", name="first", arguments={})]


def test_out_of_order_indices_are_listed_by_index() -> None:
    calls = ToolCallAccumulator()
    calls.add([delta(2, id="call_c", name="c", arguments="{}")])
    calls.add([delta(0, id="call_a", name="a", arguments='{"x"')])
    calls.add([delta(1, id="call_b", name="b", arguments="{}"), delta(0, arguments=": 1}")])
    assert [(call.id, call.name, call.arguments) for call in calls.calls()] == [
        ("call_a", "a", {"x": 1}),
        ("call_b", "b", {}),
        ("call_c", "c", {}),
    ]


def test_partial_holds_the_argument_text_so_far() -> None:
    calls = ToolCallAccumulator()
    assert not calls
    calls.add([delta(0, id="call_a", name="add", arguments='{"a": 1')])
    assert calls
    assert calls.partial() == [delta(0, id="call_a", name="add", arguments='{"a": 1')]
    with pytest.raises(ValueError):
        calls.calls()
    calls.add([delta(0, arguments="}")])
    assert calls.partial()[0].arguments == '{"a": 1}'


def test_a_call_without_an_id_gets_one_from_its_index() -> None:
    calls = ToolCallAccumulator()
    calls.add([delta(3, name="add")])
    assert calls.partial() == [delta(3, id="call_3", name="add")]
    assert calls.calls() == [ToolCall(id="call_3", name="add", arguments={})]


def test_a_fragment_before_the_name_reads_as_unnamed() -> None:
    # Forge's providers name a call on its first fragment, but a raw sender may name it late.
    calls = ToolCallAccumulator()
    calls.add([delta(0, arguments='{"q": ')])
    assert calls.partial()[0].name is None
    calls.add([delta(0, id="toolu_1", name="search", arguments='"forge"}')])
    assert calls.calls() == [ToolCall(id="toolu_1", name="search", arguments={"q": "forge"})]


def test_arguments_that_are_not_an_object_raise() -> None:
    calls = ToolCallAccumulator()
    calls.add([delta(0, id="call_a", name="add", arguments="[1, 2]")])
    with pytest.raises(ValueError, match="not a JSON object"):
        calls.calls()
