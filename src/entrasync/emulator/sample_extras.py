"""The HR-ish user properties of the sample tenants (PRODUCT.md §12), realistic and deterministic.

They come from their own random stream (seeded from the tenant's seed), so adding them left every
older property of the sample tenant (ids, names, managers, groups) exactly as it was. Each one is
left empty for a realistic share of users (about 10–20 %). Formats follow the user resource type
(https://learn.microsoft.com/graph/api/resources/user): ``employeeHireDate`` is a DateTimeOffset
(``2021-03-15T00:00:00Z``), ``businessPhones`` holds at most one number, ``preferredLanguage`` is an
ISO 639-1 tag such as ``de-DE``; ``onPremisesExtensionAttributes`` is the 15-attribute complex type.
"""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta
from typing import Any

from entrasync.emulator.objects import on_prem_attributes
from entrasync.emulator.sample_data import (
    COUNTRY_NAMES,
    EMPLOYEE_TYPES,
    GUEST_COMPANIES,
    LANGS,
    PHONES,
    SUBSIDIARIES,
)
from entrasync.emulator.tenant_profiles import TenantProfile

_HIRE_START = date(2004, 1, 5)
_HIRE_DAYS = 7600  # to the end of 2024
_hire_dates: list[str] = []
_TYPES = [t for t, _ in EMPLOYEE_TYPES]
_TYPE_WEIGHTS = [w for _, w in EMPLOYEE_TYPES]
_GRADES = (("G11", "G12"), ("G8", "G9", "G10"), ("G6", "G7"), ("G3", "G4", "G5"))  # by title level
_REGIONS = ("EMEA", "AMER", "APAC")
_REGION_OF = {"US": 1, "BR": 1, "JP": 2, "AU": 2}


def hire_dates() -> list[str]:
    """Every possible hire date as one shared string each (built once per process)."""
    if not _hire_dates:
        _hire_dates.extend(
            sys.intern((_HIRE_START + timedelta(days=d)).strftime("%Y-%m-%dT00:00:00Z")) for d in range(_HIRE_DAYS)
        )
    return _hire_dates


class Extras:
    """Draws the extra properties of one tenant's users, in generation order."""

    def __init__(self, profile: TenantProfile, departments: list[str]) -> None:
        self.rng = random.Random(f"{profile.gen_seed}/extras")
        self.profile = profile
        intern = sys.intern
        self.company = intern(profile.company)
        self.subsidiaries = [intern(f"{profile.company} {s}") for s in SUBSIDIARIES]
        self.cost_centres = {d: intern(f"CC-{1000 + 100 * k}") for k, d in enumerate(departments)}
        self.all_centres = list(self.cost_centres.values())
        self.cost_name, self.grade_name = profile.extension_names

        self._office_lines: dict[str, tuple[str, ...]] = {}

    def _phone(self, prefix: str, digits: int) -> str:
        return f"{prefix} {self.rng.randrange(10**digits):0{digits}d}"

    def _office_line(self, office: str, prefix: str, digits: int) -> tuple[str, ...]:
        """The office's main number, one shared tuple per office (direct lines would cost memory)."""
        line = self._office_lines.get(office)
        if line is None:
            line = self._office_lines[office] = (sys.intern(self._phone(prefix, digits)),)
        return line

    def props(
        self, *, guest: bool, guest_domain: str, dept: str, level: int, code: str, city: str, office: str
    ) -> dict[str, Any]:
        """``level``: 0 = executive, 1 = manager, 2 = senior, 3 = specialist (from the job title)."""
        r = self.rng.random
        dates = hire_dates()
        office_prefix, mobile, digits = PHONES[code]
        out: dict[str, Any] = {
            "city": None if r() < 0.12 else city,
            "country": None if r() < 0.12 else sys.intern(COUNTRY_NAMES[code]),
            "preferredLanguage": None if r() < 0.15 else LANGS[code],
            "businessPhones": () if guest or r() < 0.15 else self._office_line(office, office_prefix, digits),
            "mobilePhone": None if r() < 0.2 else self._phone(mobile, digits),
        }
        if guest:
            out["companyName"] = GUEST_COMPANIES.get(guest_domain) if r() < 0.7 else None
            out["employeeType"] = None
            out["employeeHireDate"] = None
            return out
        roll = r()
        out["companyName"] = (
            None if roll < 0.15 else (self.company if roll < 0.94 else self.rng.choice(self.subsidiaries))
        )
        out["employeeType"] = None if r() < 0.12 else self.rng.choices(_TYPES, _TYPE_WEIGHTS)[0]
        out["employeeHireDate"] = None if r() < 0.12 else dates[self.rng.randrange(len(dates))]
        centre = self.cost_centres.get(dept) if r() < 0.9 else self.rng.choice(self.all_centres)
        region = _REGIONS[_REGION_OF.get(code, 0)]
        attrs: list[str | None] = [None] * 15
        attrs[0] = centre if r() < 0.8 else None  # extensionAttribute1: cost centre
        attrs[1] = region if r() < 0.25 else None  # extensionAttribute2: region
        out["onPremisesExtensionAttributes"] = on_prem_attributes(attrs)
        ext: dict[str, Any] = {}
        if r() < 0.85:
            ext[self.cost_name] = centre
        if r() < 0.8:
            ext[self.grade_name] = self.rng.choice(_GRADES[level])
        out["_ext"] = ext
        return out
