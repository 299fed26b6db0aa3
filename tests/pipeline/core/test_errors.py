"""One line of any error: what every one-line report (CLI, server, background jobs) shows."""

from __future__ import annotations

from pipeline.core.errors import LookalikeError, first_line


def test_first_line_is_the_first_line_of_the_message() -> None:
    assert first_line(ValueError("  bad row 3\n  at column 2\n")) == "bad row 3"


def test_an_error_without_a_message_reads_as_its_type() -> None:
    assert first_line(LookalikeError("")) == "LookalikeError"
    assert first_line(RuntimeError()) == "RuntimeError"
