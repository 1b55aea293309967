"""What a ticket may become and what its texts must look like. Plain Python, testable without a database."""

from __future__ import annotations

from enum import StrEnum

SUMMARY_MAX = 120
DESCRIPTION_MAX = 4000
COMMENT_MAX = 4000


class State(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return {State.OPEN: "Open", State.IN_PROGRESS: "In progress", State.CLOSED: "Closed"}[self]


# Which state a ticket may move to from which; staying in the same state is always allowed (a no-op).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.OPEN: frozenset({State.IN_PROGRESS, State.CLOSED}),
    State.IN_PROGRESS: frozenset({State.OPEN, State.CLOSED}),
    State.CLOSED: frozenset({State.OPEN}),
}


def may_move(current: State, target: State) -> bool:
    return target == current or target in TRANSITIONS[current]


def clean_text(value: object, *, label: str, limit: int, required: bool = True) -> tuple[str, list[str]]:
    """The trimmed text and what is wrong with it (an empty list when nothing is)."""
    text = str(value or "").strip()
    if required and not text:
        return text, [f"Enter the {label}."]
    if len(text) > limit:
        return text, [f"The {label} is {len(text)} characters long; shorten it to at most {limit}."]
    return text, []


def clean_report(summary: object, description: object) -> tuple[dict[str, str], dict[str, list[str]]]:
    """A new ticket's summary and description, and field errors (both are required)."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, str] = {}
    for name, value, label, limit in (
        ("summary", summary, "summary (a short title of the problem)", SUMMARY_MAX),
        ("description", description, "description (what happened, where and when)", DESCRIPTION_MAX),
    ):
        cleaned[name], wrong = clean_text(value, label=label, limit=limit)
        if wrong:
            errors[name] = wrong
    return cleaned, errors
