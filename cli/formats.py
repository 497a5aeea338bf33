"""``--format``: the choice every command that prints a result offers, a table for people or JSON for scripts."""

from enum import StrEnum


class FormatChoice(StrEnum):
    table = "table"
    json = "json"
