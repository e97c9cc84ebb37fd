"""A handover plan's moves as its editor holds them, and the ways to fill them in bulk.

Each move is a row of two fields, `pairs-<n>-source` and `pairs-<n>-target`, n from 0 to
`pairs-TOTAL_FORMS` - 1, each naming a number by its id, phone or alias (device_names). One shared
list of numbers feeds every row's picker, so a plan of hundreds of moves stays a small page.
Rows are edited (moved up or down, removed, added) by plain submit buttons, which htmx turns
into in-place updates; pasted lines and CSV files go through one parser that reports each bad
line by its number and adds nothing until every line is good.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

from django.conf import settings

from ..device_names import NameIndex, NameNotResolved
from ..models import HandoverPlan
from ..sparkbot import DEVICE_ID, Device
from .reroute import GONE

PREFIX = "pairs"
MORE_ROWS = 5
MAX_FILE_BYTES = 1024 * 1024
MAX_NAME_LENGTH = 300
ROW_OP = re.compile(r"^(up|down|remove)-(\d{1,6})$")
OPS = {"save", "more", "paste", "bulk", "import"}
COUNT = re.compile(r"^\d{1,9}$")
HEADER_NAMES = {"source", "source_id", "from"}


class MalformedForm(Exception):
    """Posted data that no page of ours sends (a damaged or hand-made form): answered 400 with this sentence."""


def max_pairs() -> int:
    return settings.HANDOVER_PLAN_MAX_PAIRS


@dataclass
class Row:
    source_text: str = ""
    target_text: str = ""
    source: Device | None = None
    target: Device | None = None
    source_error: str = ""
    target_error: str = ""

    @property
    def is_blank(self) -> bool:
        return not self.source_text and not self.target_text

    @property
    def has_errors(self) -> bool:
        return bool(self.source_error or self.target_error)


@dataclass
class Move:
    """A move named in bulk: a pasted or imported line, or a chosen number."""

    source: Device
    target: Device


@dataclass
class BulkResult:
    moves: list[Move] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class PlanRows:
    """The editor's rows, in order; blank rows are kept only as the few empty rows at the end."""

    def __init__(self, rows: list[Row], *, names: NameIndex):
        self.rows, self.names = rows, names
        self.errors: list[str] = []  # about the plan as a whole
        self.focus = ""  # what the next page puts the keyboard on: "up-3", "remove-2", "row-4", "notice"...
        self.extra_rows = MORE_ROWS

    # Reading ------------------------------------------------------------------------------

    @classmethod
    def of_plan(cls, plan: HandoverPlan, *, names: NameIndex) -> PlanRows:
        pairs = plan.pairs.order_by("position").values_list("source_id", "target_id") if plan.pk else []
        return cls([Row(source_text=cls._name(names, source), target_text=cls._name(names, target))
                    for source, target in pairs], names=names)

    @staticmethod
    def _name(names: NameIndex, device_id: str) -> str:
        device = names.devices.get(device_id)
        return names.name_of(device) if device else device_id

    @classmethod
    def from_post(cls, data, *, names: NameIndex) -> PlanRows:
        """The posted rows (blank ones too, so that a row operation's index still points at its row).

        Raises MalformedForm for a row count that is not a whole number; a huge one is clamped to
        the plan's maximum (with room for its empty rows).
        """
        total = (data.get(f"{PREFIX}-TOTAL_FORMS") or "0").strip()
        if not COUNT.match(total):
            raise MalformedForm(f"The plan's form arrived damaged: its number of rows (“{total[:20]}”) is not a "
                                "whole number. Open the plan again and redo the last change.")
        count = min(int(total), max_pairs() + MORE_ROWS)
        rows = [Row(source_text=cls._field(data, n, "source"), target_text=cls._field(data, n, "target"))
                for n in range(count)]
        return cls(rows, names=names)

    @staticmethod
    def _field(data, n: int, name: str) -> str:
        value = data.get(f"{PREFIX}-{n}-{name}") or ""
        if len(value) > MAX_NAME_LENGTH or "\x00" in value:
            raise MalformedForm(f"Row {n + 1} of the plan's form arrived damaged (a number's name of "
                                f"{len(value)} characters). Open the plan again and redo the last change.")
        return value.strip()

    # Editing: the row operations ------------------------------------------------------------

    def apply(self, op: str) -> str:
        """Apply a row operation ("up-3", "down-3", "remove-3", "more"); the sentence saying what changed."""
        if op == "more":
            blanks = len(self.rows) - self.filled_count
            self.compact()
            self.extra_rows = max(blanks, MORE_ROWS) + MORE_ROWS
            self.focus = f"row-{len(self.rows)}"
            return f"{MORE_ROWS} more empty rows added."
        verb, n = ROW_OP.match(op).groups()
        index = int(n)
        if index >= len(self.rows) or self.rows[index].is_blank:
            self.compact()
            return "That row is empty or no longer there: nothing changed."
        row = self.rows[index]
        filled = [r for r in self.rows if not r.is_blank]
        position = next(n for n, r in enumerate(filled) if r is row)  # rows with the same text are still two
        self.rows = filled
        if verb == "remove":
            filled.pop(position)
            self.focus = f"remove-{min(position, len(filled) - 1)}" if filled else "more"
            return f"Row {position + 1} ({row.source_text or '?'} → {row.target_text or '?'}) removed."
        other = position + (-1 if verb == "up" else 1)
        if not 0 <= other < len(filled):
            self._focus_on_moved(verb, position)
            return f"Row {position + 1} is already the {'first' if verb == 'up' else 'last'}."
        filled[position], filled[other] = filled[other], filled[position]
        self._focus_on_moved(verb, other)
        return f"Row {position + 1} moved {verb} to row {other + 1}."

    def _focus_on_moved(self, verb: str, position: int) -> None:
        """The moved row's same button, or its other one where that is off (first row up, last row down)."""
        last = len(self.rows) - 1
        if last == 0:
            self.focus = "remove-0"
        elif (verb, position) in (("up", 0), ("down", last)):
            self.focus = f"{'down' if verb == 'up' else 'up'}-{position}"
        else:
            self.focus = f"{verb}-{position}"

    def compact(self) -> None:
        self.rows = [row for row in self.rows if not row.is_blank]

    def merge(self, moves: list[Move]) -> tuple[int, int]:
        """Add moves; a source that already has a row gets the new target. (added, changed)."""
        self.compact()
        by_source = {}
        for row in self.rows:
            device = self._resolve_quietly(row.source_text)
            if device:
                by_source.setdefault(device.id, row)
        added = changed = 0
        for move in moves:
            target_name = self.names.name_of(move.target)
            row = by_source.get(move.source.id)
            if row is None:
                row = Row(source_text=self.names.name_of(move.source), target_text=target_name)
                self.rows.append(row)
                by_source[move.source.id] = row
                added += 1
            elif row.target_text != target_name:
                row.target_text = target_name
                changed += 1
        return added, changed

    def replace(self, moves: list[Move]) -> None:
        self.rows = [Row(source_text=self.names.name_of(m.source), target_text=self.names.name_of(m.target))
                     for m in moves]

    def _resolve_quietly(self, text: str) -> Device | None:
        try:
            return self.names.resolve(text) if text else None
        except NameNotResolved:
            return None

    # Checking before saving -------------------------------------------------------------------

    def validate(self, *, in_order: bool) -> bool:
        """Check every row and the plan as a whole; errors go on the rows and in `errors`."""
        self.compact()
        for row in self.rows:
            self._check_row(row)
        if any(row.has_errors for row in self.rows):
            self.errors.append("Some moves need a fix: see the rows marked below.")
            return False
        pairs = self.pairs()
        if not pairs:
            self.errors.append("Add at least one pair of numbers.")
        elif len(pairs) > max_pairs():
            self.errors.append(f"A plan holds at most {max_pairs()} moves; this one has {len(pairs)}.")
        else:
            self._check_plan(pairs, in_order=in_order)
        return not self.errors

    def _check_row(self, row: Row) -> None:
        row.source, row.source_error = self._look_up(row.source_text)
        row.target, row.target_error = self._look_up(row.target_text)
        if not row.source_error and not row.target_error:
            if bool(row.source) != bool(row.target):
                missing = "target_error" if row.source else "source_error"
                setattr(row, missing, "Choose both numbers of the pair, or neither.")
            elif row.source and row.source.id == row.target.id:
                row.target_error = "A number cannot hand its queue to itself."
            elif row.target and not row.target.is_usable:
                row.target_error = unusable(row.target)

    def _look_up(self, text: str) -> tuple[Device | None, str]:
        if not text:
            return None, ""
        if DEVICE_ID.match(text.lower()) and self.names.devices.get(text.lower()) is None:
            return None, GONE
        try:
            return self.names.resolve(text), ""
        except NameNotResolved as error:
            return None, not_resolved(error)

    def _check_plan(self, pairs: list[tuple[str, str]], *, in_order: bool) -> None:
        sources = [source for source, _ in pairs]
        seen, repeated = set(), set()
        for source in sources:
            (repeated if source in seen else seen).add(source)
        if repeated:
            verb = "appears as a source" if len(repeated) == 1 else "appear as sources"
            self.errors.append(f"{self._labels(repeated)} {verb} more than once: "
                               "a number hands its queue over once per plan.")
        chained = {target for _, target in pairs} & seen
        if chained and not in_order:
            self.errors.append(
                f"{self._labels(chained)} both receives and hands over a queue. Tick “run the moves one after "
                "another, in the listed order” and order the pairs as they must run, or change the plan.")

    def _labels(self, ids) -> str:
        return ", ".join(self.names.devices.get(i).label for i in sorted(ids))

    def pairs(self) -> list[tuple[str, str]]:
        """(source id, target id) of every checked row, in order."""
        return [(row.source.id, row.target.id) for row in self.rows if row.source and row.target]

    # Showing ------------------------------------------------------------------------------

    @property
    def filled_count(self) -> int:
        return sum(1 for row in self.rows if not row.is_blank)

    def display(self) -> list[dict]:
        """The rows to draw, numbered, then the empty rows; plain dicts keep the template cheap.
        `focus` names the control of the row that gets the keyboard (source, up, down or remove)."""
        filled = [row for row in self.rows if not row.is_blank]
        last = len(filled) - 1
        shown = [{"index": n, "number": n + 1, "row": row, "first": n == 0, "last": n == last, "blank": False,
                  "focus": ""} for n, row in enumerate(filled)]
        room = max(0, max_pairs() - len(filled))
        for n in range(len(filled), len(filled) + min(self.extra_rows, room)):
            shown.append({"index": n, "number": n + 1, "row": Row(), "blank": True, "focus": ""})
        control, _, where = self.focus.partition("-")
        if where.isdigit() and int(where) < len(shown):
            shown[int(where)]["focus"] = "source" if control == "row" else control
        return shown


def not_resolved(error: NameNotResolved) -> str:
    if error.candidates:
        return f"{error.sentence} {', '.join(d.label for d in error.candidates)}."
    return error.sentence


def unusable(device: Device) -> str:
    return f"{device.label} cannot receive a queue: its SparkBot status is “{device.status}”."


# Filling in bulk: pasted lines and CSV files ------------------------------------------------------


def moves_from_text(text: str, *, names: NameIndex) -> BulkResult:
    """Lines `source, target` (comma, tab or semicolon; CSV quotes around a name with a comma), each
    number by id, phone or alias. A first line starting with "source" is a header: with it, the
    columns named source and target are read and others ignored (a plan exported as CSV)."""
    result = BulkResult()
    lines = [next(csv.reader([line], delimiter=_delimiter(line)), []) for line in text.splitlines()]
    columns, first = (0, 1), 0
    if lines and lines[0] and _cell(lines[0][0]).lower() in HEADER_NAMES:
        header = [_cell(cell).lower() for cell in lines[0]]
        columns = (0, header.index("target") if "target" in header else 1)
        first = 1
    seen: dict[str, int] = {}
    for number, cells in enumerate(lines[first:], start=first + 1):
        cells = [_cell(cell) for cell in cells]
        if not any(cells):
            continue
        problem, move = _move(cells, columns, first > 0, names, number)
        if problem:
            result.errors.append(f"Line {number}: {problem}")
            continue
        if move.source.id in seen:
            result.errors.append(f"Line {number}: {move.source.alias} already hands its queue over on line "
                                 f"{seen[move.source.id]}; a number hands its queue over once per plan.")
            continue
        seen[move.source.id] = number
        result.moves.append(move)
    if not result.moves and not result.errors:
        result.errors.append("There is no move to add: write one per line, the number whose queue moves, a comma, "
                             "then its target.")
    if len(result.moves) > max_pairs():
        result.errors.append(f"These lines hold {len(result.moves)} moves; a plan holds at most {max_pairs()}.")
    return result


def _delimiter(line: str) -> str:
    """Tab (cells copied from a spreadsheet), else semicolon (a CSV file some spreadsheets write), else comma."""
    if "\t" in line:
        return "\t"
    return ";" if ";" in line and "," not in line else ","


def _cell(value: str) -> str:
    return value.strip().removeprefix("'").strip()  # a leading ' is how our export keeps a cell from running


def _move(cells, columns, has_header: bool, names: NameIndex, number: int) -> tuple[str, Move | None]:
    filled = [cell for cell in cells if cell]
    if (not has_header and len(filled) != 2) or max(columns) >= len(cells) or not all(cells[c] for c in columns):
        return ("give two numbers separated by a comma: the number whose queue moves, then its target "
                "(by id, phone or alias).", None)
    found = []
    for text in (cells[columns[0]], cells[columns[1]]):
        if DEVICE_ID.match(text.lower()) and names.devices.get(text.lower()) is None:
            return f"{text} is no longer in SparkBot's device list.", None
        try:
            found.append(names.resolve(text))
        except NameNotResolved as error:
            return not_resolved(error), None
    source, target = found
    if source.id == target.id:
        return f"{source.label} cannot hand its queue to itself.", None
    if not target.is_usable:
        return unusable(target), None
    return "", Move(source, target)


def text_from_file(upload) -> tuple[str, str]:
    """(text, "") from an uploaded CSV file, or ("", the sentence saying why it cannot be read)."""
    if upload is None:
        return "", "Choose a CSV file to import."
    if upload.size > MAX_FILE_BYTES:
        return "", f"The file is {upload.size // 1024} KB; a plan's CSV file is at most {MAX_FILE_BYTES // 1024} KB."
    raw = upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "", "The file is not UTF-8 text: save it as “CSV UTF-8” and import it again."
    if "\x00" in text:
        return "", "The file is not a CSV text file."
    return text, ""


def moves_chosen(source_ids: list[str], target_text: str, *, names: NameIndex) -> BulkResult:
    """"Move every chosen number to X": the chosen numbers (device ids) and the target, by any name."""
    result = BulkResult()
    if len(source_ids) > max_pairs():
        raise MalformedForm(f"{len(source_ids)} numbers were chosen; a plan holds at most {max_pairs()} moves.")
    if any(not DEVICE_ID.match(i) for i in source_ids):
        raise MalformedForm("The list of chosen numbers arrived damaged. Open the plan again and choose them again.")
    sources = [names.devices.get(i) for i in dict.fromkeys(source_ids)]
    if not sources:
        result.errors.append("Choose the numbers whose queues move.")
    if any(device is None for device in sources):
        result.errors.append("A chosen number is no longer in SparkBot's device list; refresh the page and choose "
                             "again.")
    if not target_text.strip():
        result.errors.append("Give the number they move to.")
        return result
    try:
        target = names.resolve(target_text)
    except NameNotResolved as error:
        result.errors.append(not_resolved(error))
        return result
    if not target.is_usable:
        result.errors.append(unusable(target))
    if any(device and device.id == target.id for device in sources):
        result.errors.append(f"{target.label} is among the chosen numbers: a number cannot hand its queue to itself.")
    if not result.errors:
        result.moves = [Move(source, target) for source in sources]
    return result
