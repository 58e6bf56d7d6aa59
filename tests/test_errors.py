"""expect_error: shows a deliberate error and lets the notebook go on; fails loudly otherwise."""

from __future__ import annotations

import pickle

import pytest
import torch

from helpers import expect_error


def test_catches_the_expected_error_and_prints_type_and_message(capsys):
    with expect_error(RuntimeError, "scalar outputs") as caught:
        torch.ones(3, requires_grad=True).mul(2).backward()
    printed = capsys.readouterr().out
    assert printed.startswith("RuntimeError (expected, caught):\n    ")
    assert "scalar outputs" in printed
    assert isinstance(caught.error, RuntimeError)
    assert "scalar outputs" in caught.message


def test_the_phrase_is_matched_without_regard_to_case(capsys):
    with expect_error(RuntimeError, "GRAD CAN BE IMPLICITLY"):
        torch.ones(3, requires_grad=True).mul(2).backward()
    assert "RuntimeError" in capsys.readouterr().out


def test_any_of_several_phrases_will_do(capsys):
    with expect_error(ValueError, ("first wording", "second wording")):
        raise ValueError("the second wording, in a newer release")
    assert "second wording" in capsys.readouterr().out


def test_a_subclass_counts_and_a_tuple_of_kinds_is_accepted(capsys):
    with expect_error((TypeError, pickle.UnpicklingError), "bad"):
        raise pickle.UnpicklingError("bad file")
    assert capsys.readouterr().out.startswith("UnpicklingError (expected, caught)")


def test_no_error_fails_loudly():
    with pytest.raises(AssertionError, match="expected a RuntimeError, but the code ran"):
        with expect_error(RuntimeError, "anything"):
            pass


def test_another_kind_of_error_fails_loudly_and_keeps_the_original():
    with pytest.raises(AssertionError, match="expected a RuntimeError, but got KeyError") as info:
        with expect_error(RuntimeError):
            raise KeyError("weight")
    assert isinstance(info.value.__cause__, KeyError)


def test_a_message_without_the_phrase_fails_loudly():
    with pytest.raises(AssertionError, match="does not mention 'in-place'"):
        with expect_error(RuntimeError, "in-place"):
            raise RuntimeError("something else entirely")


def test_show_false_prints_nothing(capsys):
    with expect_error(RuntimeError, "boom", show=False) as caught:
        raise RuntimeError("boom")
    assert capsys.readouterr().out == ""
    assert caught.report().startswith("RuntimeError")


def test_keyboard_interrupt_is_never_swallowed():
    with pytest.raises(KeyboardInterrupt):
        with expect_error(RuntimeError):
            raise KeyboardInterrupt


def test_colour_codes_are_dropped_and_long_messages_wrapped_and_cut(capsys):
    text = (
        "\x1b[1mbold part\x1b[0m "
        + " ".join(["word"] * 400)
        + "\n"
        + "\n".join(f"line {i}" for i in range(30))
    )
    with expect_error(RuntimeError, "bold part"):
        raise RuntimeError(text)
    printed = capsys.readouterr().out
    assert "\x1b" not in printed
    lines = printed.splitlines()
    assert all(len(line) <= 92 for line in lines)
    assert lines[-1].strip().startswith("... (") and "more lines" in lines[-1]
    assert len(lines) == 1 + 12 + 1


@pytest.mark.parametrize("bad", ["RuntimeError", 3, None, (), object])
def test_a_wrong_first_argument_is_named(bad):
    with pytest.raises(TypeError, match="exception class"):
        expect_error(bad)


def test_a_wrong_phrase_is_named():
    with pytest.raises(TypeError, match="phrase must be text"):
        expect_error(RuntimeError, 42)
