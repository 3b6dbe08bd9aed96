"""Postcode -> district, from a data file the organisation can edit."""

from __future__ import annotations

import os
import re
import time
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_FILE = Path(__file__).with_name("districts.toml")
_POSTCODE = re.compile(r"(?<!\d)([1-9]\d{3})(?!\d)")


@dataclass(frozen=True)
class District:
    code: str
    name: str
    neighbours: tuple[str, ...]


@dataclass(frozen=True)
class DistrictMap:
    districts: dict[str, District]
    by_postcode: dict[str, str]

    def district_for(self, postcode: str | None) -> str | None:
        if not postcode:
            return None
        return self.by_postcode.get(postcode[:4])

    def neighbours(self, district: str | None) -> tuple[str, ...]:
        if district is None or district not in self.districts:
            return ()
        return self.districts[district].neighbours

    def name(self, district: str | None) -> str:
        if district is None:
            return "?"
        found = self.districts.get(district)
        return found.name if found else district


def load_districts(path: Path) -> DistrictMap:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    districts: dict[str, District] = {}
    by_postcode: dict[str, str] = {}
    for code, entry in data.get("districts", {}).items():
        districts[code] = District(code, entry.get("name", code), tuple(entry.get("neighbours", ())))
        for postcode in entry.get("postcodes", ()):
            postcode = str(postcode).strip()
            if postcode in by_postcode:
                raise ValueError(f"{path}: postcode {postcode} is in two districts")
            by_postcode[postcode] = code
    return DistrictMap(districts, by_postcode)


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> DistrictMap:
    return load_districts(Path(path))


# The file is looked at again at most this often: district_map runs on most webhooks,
# and a stat each time was 3% of a voice step's CPU.
RECHECK_SECONDS = 2.0
_last_checked: tuple[str, float, DistrictMap] | None = None


def district_map() -> DistrictMap:
    """The current map; an edited file is picked up without a restart (within two seconds)."""
    global _last_checked
    path = os.environ.get("BUURTLIJN_DISTRICTS_FILE") or str(DEFAULT_FILE)
    checked, now = _last_checked, time.monotonic()
    if checked is not None and checked[0] == path and now - checked[1] < RECHECK_SECONDS:
        return checked[2]
    current = _cached(path, Path(path).stat().st_mtime)
    _last_checked = (path, now, current)
    return current


def find_postcode(text: str) -> str | None:
    """The first four-digit Dutch postcode in free text ('2034', '2034 AB', '2034AB')."""
    match = _POSTCODE.search(text)
    return match.group(1) if match else None
