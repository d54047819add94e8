"""What a benchmark returns: tables of numbers, targets checked, notes; stored as JSON between runs."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
# A part taken over from the report file as it was (no stored results for it here): its markdown is kept verbatim.
KEPT = "kept"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Target:
    """One target of the performance issue: the measured value, the limit as written, and whether it was met."""

    name: str
    value: str
    limit: str
    met: bool | None  # None: not measurable in this run (skipped piece)
    note: str = ""


@dataclass
class Section:
    name: str
    title: str
    status: str = OK
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    ran_at: str = ""
    mode: str = "full"
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers other benchmarks or later runs may reuse

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> Table:
        table = Table(title, columns, rows)
        self.tables.append(table)
        return table

    def target(self, name: str, *, value: str, limit: str, met: bool | None, note: str = "") -> None:
        self.targets.append(Target(name, value, limit, met, note))


def skipped(name: str, title: str, reason: str) -> Section:
    return Section(name=name, title=title, status=SKIPPED, notes=[reason])


def kept(name: str, title: str, *, markdown: str, target_rows: list[str]) -> Section:
    """A part of an earlier report (``markdown``, its own rows of the Targets table) shown again unchanged."""
    return Section(name=name, title=title, status=KEPT, data={"markdown": markdown, "target_rows": target_rows})


def save(section: Section, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{section.name}.json"
    path.write_text(json.dumps(asdict(section), indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return path


def load(path: Path) -> Section:
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["tables"] = [Table(**table) for table in raw.get("tables", [])]
    raw["targets"] = [Target(**target) for target in raw.get("targets", [])]
    return Section(**raw)


def load_all(folder: Path) -> dict[str, Section]:
    return {path.stem: load(path) for path in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
