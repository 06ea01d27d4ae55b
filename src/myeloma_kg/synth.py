"""Synthetic cohorts: deterministic, clinically plausible patient documents (issue 6).

:func:`generate` yields patient documents (plain mappings under the public document contract, ready
for ``json.dumps``) that feed the benchmarks, the property tests and ``myeloma-kg synth``.

* **Deterministic.** Patient ``i`` of seed ``s`` is drawn from its own random stream, seeded from
  ``(s, i)`` only, so it is the same whatever ``n`` is (``generate(10, 1)`` is a prefix of
  ``generate(1000, 1)``), in every process and on every platform. Whether patient ``i`` is made invalid,
  and how, comes from a second stream of ``(s, i)``: the valid part of a cohort does not change with
  ``invalid_share``.
* **Clinically plausible.** 1-6 prior lines of real regimens of the knowledge base. Line 1 is a front-line
  regimen chosen by era and transplant eligibility (VRd, VTd, VCd, D-VRd with autologous transplant and
  lenalidomide maintenance for fit younger patients; DRd, Rd, VMP, D-VMP, VRd-lite otherwise). Later
  lines are relapse regimens chosen by line, era of approval and what the patient is refractory to
  (an Rd triplet after progression on lenalidomide is possible but rare; CAR-T and bispecifics after
  triple-class exposure; venetoclax for t(11;14)). Dates are consistent (start <= end <= progression; the
  next line starts after the previous progression; the relapse is the last progression; the assessment
  comes after every recorded event). Continuous regimens usually run until progression (so refractoriness
  follows), fixed-duration ones stop; partial components (bortezomib for 8 cycles in DVd, carfilzomib for
  18 cycles in KRd) carry their own dates. Cytogenetics (sometimes absent or dated at diagnosis), frailty,
  ECOG, neuropathy grades that follow bortezomib/thalidomide exposure, NYHA class, cardiovascular risk,
  creatinine clearance, rare extramedullary disease and plasma-cell leukaemia.
* **Deliberately invalid documents** (``invalid_share``): each carries exactly one defect from
  :data:`DEFECTS` (unknown drug id, end before start, bad response code, missing assessmentDate, age as
  text, duplicate line number ...). Validation must reject every one of them.

>>> docs = list(generate(3, seed=1))
>>> [d["id"] for d in docs]
['syn1-000000', 'syn1-000001', 'syn1-000002']
>>> docs[2] == patient(1, 2)
True
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["generate", "generate_records", "patient", "SyntheticPatient", "DEFECTS", "REGIMEN_COMPONENTS"]

_STREAM = "myeloma-kg/synth/v1"

#: Components of every regimen the generator uses (checked against the knowledge base by the tests).
REGIMEN_COMPONENTS: dict[str, tuple[str, ...]] = {
    "vrd": ("bortezomib", "lenalidomide", "dexamethasone"),
    "vtd": ("bortezomib", "thalidomide", "dexamethasone"),
    "vcd": ("bortezomib", "cyclophosphamide", "dexamethasone"),
    "vmp": ("bortezomib", "melphalan", "prednisone"),
    "d_vmp": ("daratumumab", "bortezomib", "melphalan", "prednisone"),
    "d_vrd": ("daratumumab", "bortezomib", "lenalidomide", "dexamethasone"),
    "drd": ("daratumumab", "lenalidomide", "dexamethasone"),
    "rd": ("lenalidomide", "dexamethasone"),
    "vd": ("bortezomib", "dexamethasone"),
    "kd": ("carfilzomib", "dexamethasone"),
    "krd": ("carfilzomib", "lenalidomide", "dexamethasone"),
    "ird": ("ixazomib", "lenalidomide", "dexamethasone"),
    "erd": ("elotuzumab", "lenalidomide", "dexamethasone"),
    "dvd": ("daratumumab", "bortezomib", "dexamethasone"),
    "dkd": ("daratumumab", "carfilzomib", "dexamethasone"),
    "isa_kd": ("isatuximab", "carfilzomib", "dexamethasone"),
    "isa_pd": ("isatuximab", "pomalidomide", "dexamethasone"),
    "kpd": ("carfilzomib", "pomalidomide", "dexamethasone"),
    "dpd": ("daratumumab", "pomalidomide", "dexamethasone"),
    "epd": ("elotuzumab", "pomalidomide", "dexamethasone"),
    "pd": ("pomalidomide", "dexamethasone"),
    "pcd": ("pomalidomide", "cyclophosphamide", "dexamethasone"),
    "pvd": ("pomalidomide", "bortezomib", "dexamethasone"),
    "pan_vd": ("panobinostat", "bortezomib", "dexamethasone"),
    "sd": ("selinexor", "dexamethasone"),
    "svd": ("selinexor", "bortezomib", "dexamethasone"),
    "ven_dex": ("venetoclax", "dexamethasone"),
    "ven_vd": ("venetoclax", "bortezomib", "dexamethasone"),
    "benda_dex": ("bendamustine", "dexamethasone"),
    "dcep": ("dexamethasone", "cyclophosphamide", "etoposide", "cisplatin"),
    "dt_pace": ("dexamethasone", "thalidomide", "cisplatin", "doxorubicin", "cyclophosphamide", "etoposide"),
    "vdt_pace": ("bortezomib", "dexamethasone", "thalidomide", "cisplatin", "doxorubicin", "cyclophosphamide",
                 "etoposide"),
    "dara_mono": ("daratumumab",),
    "bvd": ("belantamab_mafodotin", "bortezomib", "dexamethasone"),
    "bpd": ("belantamab_mafodotin", "pomalidomide", "dexamethasone"),
    "pd_clarithromycin": ("clarithromycin", "pomalidomide", "dexamethasone"),
    "pld_vd": ("pegylated_liposomal_doxorubicin", "bortezomib", "dexamethasone"),
    "ide_cel": ("idecabtagene_vicleucel",),
    "cilta_cel": ("ciltacabtagene_autoleucel",),
    "teclistamab": ("teclistamab",),
    "elranatamab": ("elranatamab",),
    "talquetamab": ("talquetamab",),
    "linvoseltamab": ("linvoseltamab",),
    "tal_dp": ("talquetamab", "daratumumab", "pomalidomide"),
    "tec_dara": ("teclistamab", "daratumumab"),
    "td": ("thalidomide", "dexamethasone"),
}

IMIDS = frozenset({"lenalidomide", "pomalidomide", "thalidomide"})
PIS = frozenset({"bortezomib", "carfilzomib", "ixazomib"})
ANTI_CD38 = frozenset({"daratumumab", "isatuximab"})
BCMA = frozenset({"belantamab_mafodotin", "idecabtagene_vicleucel", "ciltacabtagene_autoleucel", "teclistamab",
                  "elranatamab", "linvoseltamab"})
NEUROTOXIC = frozenset({"bortezomib", "thalidomide"})
RESPONSES = ("sCR", "CR", "VGPR", "PR", "MR", "SD", "PD")
_NO_RESPONSE = frozenset({"SD", "PD"})
REFRACTORY_WINDOW_DAYS = 60


@dataclass(frozen=True)
class _Relapse:
    """How a relapse regimen behaves: median PFS (months, first relapse), year available, course, weights."""

    pfs: float
    year: int
    course: str  # continuous | fixed | cell
    weights: tuple[float, float, float]  # line 2, lines 3-4, lines 5-6
    fixed_days: int = 0  # fixed-duration regimens: planned length
    partial: tuple[tuple[str, int], ...] = ()  # components given for a fixed time inside a continuous regimen


_C, _F, _CELL = "continuous", "fixed", "cell"
RELAPSE_REGIMENS: dict[str, _Relapse] = {
    "drd": _Relapse(44, 2016, _C, (10, 2, 0.4)),
    "krd": _Relapse(26, 2015, _C, (6, 2, 0.4), partial=(("carfilzomib", 504),)),
    "ird": _Relapse(20, 2016, _C, (4, 1.5, 0.4)),
    "erd": _Relapse(19, 2016, _C, (2, 1, 0.3)),
    "rd": _Relapse(14, 2007, _C, (2, 0.8, 0.4)),
    "vd": _Relapse(9, 2005, _F, (1.5, 1, 0.5), fixed_days=168),
    "kd": _Relapse(18, 2015, _C, (5, 4, 2)),
    "dvd": _Relapse(17, 2016, _C, (10, 4, 1), partial=(("bortezomib", 168), ("dexamethasone", 168))),
    "dkd": _Relapse(28, 2020, _C, (8, 5, 1)),
    "isa_kd": _Relapse(35, 2021, _C, (6, 4, 1)),
    "dpd": _Relapse(12, 2017, _C, (5, 8, 2)),
    "isa_pd": _Relapse(12, 2020, _C, (1, 6, 2)),
    "kpd": _Relapse(12, 2016, _C, (2, 3, 1.5)),
    "epd": _Relapse(10, 2018, _C, (0.3, 3, 2)),
    "pd": _Relapse(4, 2013, _C, (0.5, 3, 3)),
    "pcd": _Relapse(8, 2014, _C, (0.4, 2, 2)),
    "pvd": _Relapse(11, 2019, _C, (3, 3, 1)),
    "pan_vd": _Relapse(10, 2015, _F, (0.1, 0.4, 0.6), fixed_days=336),
    "svd": _Relapse(14, 2020, _C, (2, 3, 1.5)),
    "sd": _Relapse(4, 2019, _C, (0, 0.5, 3)),
    "bvd": _Relapse(36, 2024, _C, (3, 2, 1), partial=(("bortezomib", 168), ("dexamethasone", 168))),
    "bpd": _Relapse(24, 2024, _C, (1.5, 2, 1)),
    "dara_mono": _Relapse(4, 2016, _C, (0.2, 0.7, 1.5)),
    "cilta_cel": _Relapse(30, 2022, _CELL, (2, 4, 3)),
    "ide_cel": _Relapse(13, 2021, _CELL, (0, 2, 2.5)),
    "teclistamab": _Relapse(11, 2022, _C, (0, 2, 5)),
    "elranatamab": _Relapse(17, 2023, _C, (0, 1.5, 4)),
    "talquetamab": _Relapse(7.5, 2023, _C, (0, 0.5, 4)),
    "linvoseltamab": _Relapse(12, 2025, _C, (0, 0.3, 1.5)),
    "tal_dp": _Relapse(25, 2026, _C, (0.2, 0.3, 0.2)),
    "tec_dara": _Relapse(40, 2025, _C, (0.4, 0.5, 0.2)),
    "ven_dex": _Relapse(7, 2017, _C, (0.3, 1.5, 3)),
    "ven_vd": _Relapse(20, 2019, _C, (0.3, 1, 0.5)),
    "benda_dex": _Relapse(4, 2010, _F, (0.05, 0.4, 1), fixed_days=126),
    "dcep": _Relapse(3, 2005, _F, (0.05, 0.3, 1), fixed_days=56),
    "dt_pace": _Relapse(5, 2005, _F, (0, 0.2, 0.6), fixed_days=60),
    "vdt_pace": _Relapse(5, 2008, _F, (0, 0.2, 0.5), fixed_days=60),
    "pld_vd": _Relapse(9, 2007, _F, (0.1, 0.4, 0.8), fixed_days=168),
    "pd_clarithromycin": _Relapse(8, 2013, _C, (0, 0.1, 0.3)),
    "vcd": _Relapse(10, 2006, _F, (1, 0.8, 0.5), fixed_days=168),
    "td": _Relapse(6, 2005, _C, (0.1, 0.15, 0.2)),
}

# Older relapse regimens used less once anti-CD38 and carfilzomib combinations were available.
_SUPERSEDED = frozenset({"vd", "td", "vcd", "benda_dex", "pd_clarithromycin", "rd", "pan_vd"})

# Drug combinations given without a catalogue regimen id (the line lists its drugs only).
_OFF_CATALOGUE = (
    ("carfilzomib", "cyclophosphamide", "dexamethasone"),
    ("daratumumab", "bortezomib", "cyclophosphamide", "dexamethasone"),
    ("ixazomib", "pomalidomide", "dexamethasone"),
    ("daratumumab", "carfilzomib", "pomalidomide", "dexamethasone"),
)

_FINDINGS_TRANSLOCATION = (("t(11;14)", 0.17), ("t(4;14)", 0.12), ("t(14;16)", 0.03), ("t(14;20)", 0.01))
_HIGH_RISK = frozenset({"t(4;14)", "t(14;16)", "t(14;20)", "del(17p)", "amp(1q)"})
_ASSESSMENT_FIRST = dt.date(2019, 1, 1)
_ASSESSMENT_LAST = dt.date(2026, 10, 31)


@dataclass(frozen=True)
class SyntheticPatient:
    """One generated patient: its index, the document, and the injected defect (``None`` when valid)."""

    index: int
    document: dict[str, Any]
    defect: str | None = None

    @property
    def valid(self) -> bool:
        """True for a document generated to be valid."""
        return self.defect is None


def generate(n: int, seed: int, invalid_share: float = 0.0) -> Iterator[dict[str, Any]]:
    """Yield ``n`` patient documents for ``seed``; about ``invalid_share`` of them carry one defect.

    :raises ValueError: for a negative ``n`` or a share outside [0, 1].
    """
    for record in generate_records(n, seed, invalid_share):
        yield record.document


def generate_records(n: int, seed: int, invalid_share: float = 0.0, start: int = 0) -> Iterator[SyntheticPatient]:
    """Like :func:`generate`, with each document's index and defect (patients ``start`` .. ``start + n - 1``)."""
    if n < 0:
        raise ValueError(f"n must be 0 or more, got {n}")
    if not 0.0 <= invalid_share <= 1.0 or math.isnan(invalid_share):
        raise ValueError(f"invalid_share must be between 0 and 1, got {invalid_share}")
    for index in range(start, start + n):
        yield _record(seed, index, invalid_share)


def patient(seed: int, index: int, invalid_share: float = 0.0) -> dict[str, Any]:
    """Patient ``index`` of cohort ``seed`` (the same document :func:`generate` yields at that position)."""
    return _record(seed, index, invalid_share).document


def _record(seed: int, index: int, invalid_share: float) -> SyntheticPatient:
    rng = random.Random(f"{_STREAM}/{seed}/{index}")
    doc = _Builder(rng, f"syn{seed}-{index:06d}").build()
    defect_rng = random.Random(f"{_STREAM}/{seed}/{index}/defect")
    if invalid_share > 0 and defect_rng.random() < invalid_share:
        name = _inject_defect(doc, defect_rng)
        return SyntheticPatient(index, doc, name)
    return SyntheticPatient(index, doc, None)


# ---------------------------------------------------------------------------------------------- helpers


def _iso(day: dt.date) -> str:
    return day.isoformat()


def _days(n: float) -> dt.timedelta:
    return dt.timedelta(days=int(round(n)))


def _weighted(rng: random.Random, options: dict[Any, float]) -> Any:
    items = [(k, w) for k, w in options.items() if w > 0]
    total = sum(w for _, w in items)
    x = rng.random() * total
    for key, weight in items:
        x -= weight
        if x < 0:
            return key
    return items[-1][0]


def _months(m: float) -> float:
    return m * 30.44


@dataclass
class _Line:
    """A line under construction, with what the generator tracks about it."""

    number: int
    regimen: str | None
    drugs: tuple[str, ...]
    start: dt.date
    end: dt.date
    progression: dt.date
    response: str
    on_therapy: bool
    drug_end: dict[str, dt.date]  # drugs given for less than the whole line
    transplant: dict[str, Any] | None = None
    maintenance: dict[str, Any] | None = None
    maintenance_end: dt.date | None = None
    stopped: tuple[str, ...] = ()
    asserted_refractory: tuple[str, ...] = ()

    def last_doses(self) -> dict[str, dt.date]:
        """The last dose of every drug of the line (as the engine's administrations step reads it)."""
        out = {d: self.drug_end.get(d, self.end) for d in self.drugs}
        if self.maintenance is not None and self.maintenance_end is not None:
            for d in self.maintenance["drugs"]:
                out[d] = max(out[d], self.maintenance_end) if d in out else self.maintenance_end
        return out

    def refractory(self) -> set[str]:
        """Drugs this line makes the patient refractory to (IMWG: no response, or progression within 60 days)."""
        out = set()
        for drug, last in self.last_doses().items():
            no_response = self.response in _NO_RESPONSE and drug not in self.stopped
            if no_response or (self.progression - last).days <= REFRACTORY_WINDOW_DAYS:
                out.add(drug)
        return out

    def to_dict(self, rng: random.Random) -> dict[str, Any]:
        items: list[Any] = []
        for d in self.drugs:
            if d in self.drug_end and self.drug_end[d] < self.end:
                items.append({"drug": d, "start": _iso(self.start), "end": _iso(self.drug_end[d])})
            else:
                items.append(d)
        line: dict[str, Any] = {"number": self.number}
        if self.regimen is not None:
            line["regimen"] = self.regimen
        line.update({
            "drugs": items,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "bestResponse": self.response,
            "progression": _iso(self.progression),
            "progressionOnTherapy": self.on_therapy,
        })
        if self.transplant is not None:
            line["transplant"] = self.transplant
        if self.maintenance is not None:
            line["maintenance"] = self.maintenance
        if self.stopped or rng.random() < 0.5:
            line["stoppedForToxicity"] = list(self.stopped)
        if self.asserted_refractory or rng.random() < 0.3:
            line["refractoryTo"] = list(self.asserted_refractory)
        return line


# ---------------------------------------------------------------------------------------------- the model


class _Builder:
    """Draws one patient; every draw comes from ``rng`` in a fixed order."""

    def __init__(self, rng: random.Random, pid: str) -> None:
        self.rng = rng
        self.pid = pid

    # ------------------------------------------------------------------ patient-level draws
    def build(self) -> dict[str, Any]:
        rng = self.rng
        self.n_lines = _weighted(rng, {1: 34, 2: 25, 3: 17, 4: 11, 5: 7, 6: 6})
        self.age_dx = int(min(88 - 2 * self.n_lines, max(32, rng.gauss(66 - self.n_lines, 9))))
        self.fit_at_dx = self.age_dx < 70 and rng.random() < 0.85
        self.eligible_at_dx = self.fit_at_dx and rng.random() < 0.9
        self.findings = self._findings()
        self.high_risk = bool(set(self.findings or ()) & _HIGH_RISK)
        self.nyha_base = _weighted(rng, {0: 88, 1: 5, 2: 4, 3: 2.5, 4: 0.5}) if self.age_dx < 75 else \
            _weighted(rng, {0: 78, 1: 8, 2: 8, 3: 5, 4: 1})
        self.emd = rng.random() < 0.03 + 0.012 * (self.n_lines - 1)
        self.pcl = rng.random() < 0.008 + 0.004 * (self.n_lines - 1)

        # Timeline: place the diagnosis so that the assessment falls in the registry window.
        target = _ASSESSMENT_FIRST + _days(rng.random() * (_ASSESSMENT_LAST - _ASSESSMENT_FIRST).days)
        # Draw the history once to learn its length, then again from the same state starting at the right
        # time (so that regimens fit their era), then move it by the few days the second draw differs.
        state = rng.getstate()
        self.diagnosis = target - _days(365.25 * 3 * self.n_lines)
        self._lines(self.diagnosis)
        span = self.assessment - self.diagnosis
        rng.setstate(state)
        self.diagnosis = target - span
        lines = self._lines(self.diagnosis)
        self._shift(lines, (target - self.assessment).days)
        return self._document(lines, lines[0].start)

    def _findings(self) -> list[str] | None:
        rng = self.rng
        findings: list[str] = []
        x = rng.random()
        for name, p in _FINDINGS_TRANSLOCATION:
            if x < p:
                findings.append(name)
                break
            x -= p
        if rng.random() < 0.10 + 0.02 * (self.n_lines - 1):
            findings.append("del(17p)")
        chr1q = _weighted(rng, {None: 60, "gain(1q)": 30, "amp(1q)": 10})
        if chr1q:
            findings.append(chr1q)
        return findings

    # ------------------------------------------------------------------ lines
    def _lines(self, diagnosis: dt.date) -> list[_Line]:
        rng = self.rng
        lines: list[_Line] = []
        state = _State()
        day = diagnosis
        for number in range(1, self.n_lines + 1):
            line = self._front_line(day) if number == 1 else self._relapse_line(number, day, state, lines)
            lines.append(line)
            state.update(line)
            gap = 1 + min(int(rng.expovariate(1 / 18)), 90)
            if rng.random() < 0.05:  # work-up, apheresis or a treatment-free pause
                gap += rng.randint(20, 50)
            day = line.progression + _days(gap)
        self.relapse = lines[-1].progression
        self.assessment = self.relapse + _days(rng.randint(1, 42))
        return lines

    def _response(self, number: int, regimen: str | None) -> str:
        rng = self.rng
        if regimen in ("cilta_cel", "ide_cel"):
            weights = (30, 40, 15, 8, 2, 3, 2)
        elif regimen in ("teclistamab", "elranatamab", "talquetamab", "linvoseltamab", "tec_dara", "tal_dp"):
            weights = (15, 20, 20, 15, 5, 10, 15)
        elif number == 1:
            weights = (12, 26, 34, 20, 2, 4, 2)
        elif number == 2:
            weights = (6, 14, 30, 30, 6, 8, 6)
        elif number <= 4:
            weights = (3, 8, 22, 34, 9, 12, 12)
        else:
            weights = (1, 4, 14, 31, 12, 16, 22)
        return _weighted(rng, dict(zip(RESPONSES, weights)))

    def _pfs_days(self, median_months: float, response: str, number: int) -> float:
        rng = self.rng
        if response == "PD":
            return rng.uniform(21, 100)
        if response == "SD":
            return rng.uniform(60, 240)
        factor = {"sCR": 1.5, "CR": 1.4, "VGPR": 1.1, "PR": 0.75, "MR": 0.45}[response]
        line_factor = {1: 1.0, 2: 1.0, 3: 0.85, 4: 0.75}.get(number, 0.65)
        risk = 0.65 if self.high_risk else 1.0
        days = _months(median_months) * factor * line_factor * risk * math.exp(rng.gauss(0, 0.6))
        return max(45.0, min(days, 365.25 * 12))

    def _front_line(self, start: dt.date) -> _Line:
        rng = self.rng
        year = start.year
        if self.eligible_at_dx:
            options = {"vrd": 45 if year >= 2010 else 0, "vtd": 25 if year < 2018 else 10, "vcd": 12,
                       "d_vrd": 35 if year >= 2022 else 0}
        else:
            options = {"drd": 40 if year >= 2019 else 0, "vrd": 25 if year >= 2010 else 0,
                       "rd": 14 if year >= 2008 else 0, "vmp": 14 if year < 2019 else 4,
                       "d_vmp": 12 if year >= 2018 else 0, "vcd": 6}
            if self.age_dx >= 80:
                options["rd"] *= 2.5
                options["vrd"] *= 0.5
        regimen = _weighted(rng, options)
        response = self._response(1, regimen)
        drugs = REGIMEN_COMPONENTS[regimen]
        drug_end: dict[str, dt.date] = {}
        transplant = maintenance = None
        maintenance_end = None
        asct_planned = self.eligible_at_dx and regimen in ("vrd", "vtd", "vcd", "d_vrd") and rng.random() < 0.88
        if asct_planned:
            cycles = rng.choice((4, 4, 4, 6, 6)) if regimen != "d_vrd" else 4
            induction_end = start + _days(cycles * (28 if regimen == "d_vrd" else 21) - rng.randint(7, 10))
            asct = induction_end + _days(rng.randint(25, 75))
            maintain = year >= 2012 and rng.random() < 0.85
            median = 62 if regimen == "d_vrd" else (50 if maintain else 34)
            pfs = self._pfs_days(median, response, 1)
            progression = start + _days(pfs)
            if progression <= asct + _days(30):  # progressed during induction: no transplant
                end = min(induction_end, progression)
                if response not in _NO_RESPONSE and progression <= induction_end:
                    response = rng.choice(("MR", "SD", "PD"))
                return self._finish(_Line(1, regimen, drugs, start, end, progression, response,
                                          progression <= induction_end, drug_end))
            transplant = {"kind": "autologous", "date": _iso(asct)}
            end = induction_end
            on_therapy = False
            m_start = asct + _days(rng.randint(60, 120))
            if maintain and m_start < progression - _days(30):
                m_drugs = ["lenalidomide"]
                if regimen == "d_vrd" and rng.random() < 0.6:
                    m_drugs = ["daratumumab", "lenalidomide"]
                elif year >= 2016 and self.high_risk and rng.random() < 0.25:
                    m_drugs = ["bortezomib", "lenalidomide"]
                planned = None if rng.random() < 0.6 else _days(rng.randint(700, 1100))
                if planned is None or m_start + planned >= progression:
                    maintenance_end = progression  # progressed on maintenance
                    on_therapy = True
                else:
                    maintenance_end = m_start + planned
                maintenance = {"drugs": m_drugs, "start": _iso(m_start), "end": _iso(maintenance_end)}
            line = _Line(1, regimen, drugs, start, end, progression, response, on_therapy, drug_end,
                         transplant=transplant, maintenance=maintenance, maintenance_end=maintenance_end)
            return self._finish(line)
        # No transplant: continuous regimens run until progression, fixed ones stop.
        median = {"drd": 55, "d_vrd": 60, "vrd": 40, "rd": 26, "vmp": 22, "d_vmp": 36, "vtd": 24, "vcd": 20}[regimen]
        pfs = self._pfs_days(median, response, 1)
        progression = start + _days(pfs)
        if regimen in ("vrd", "d_vrd"):  # 8 cycles with bortezomib, then (D)Rd until progression
            drug_end["bortezomib"] = start + _days(8 * 21 - 10)
            return self._finish(self._continuous(1, regimen, drugs, start, progression, response, drug_end))
        if regimen == "d_vmp":  # 9 six-week cycles of VMP, daratumumab until progression
            for d in ("bortezomib", "melphalan", "prednisone"):
                drug_end[d] = start + _days(9 * 42 - 10)
            return self._finish(self._continuous(1, regimen, drugs, start, progression, response, drug_end))
        if regimen in ("drd", "rd"):
            return self._finish(self._continuous(1, regimen, drugs, start, progression, response, drug_end))
        fixed = {"vmp": 9 * 42 - 10, "vtd": 6 * 21 - 10, "vcd": 8 * 21 - 10}[regimen]
        return self._finish(self._fixed(1, regimen, drugs, start, progression, response, fixed))

    def _continuous(self, number: int, regimen: str | None, drugs: tuple[str, ...], start: dt.date,
                    progression: dt.date, response: str, drug_end: dict[str, dt.date]) -> _Line:
        """A regimen given until progression; sometimes stopped earlier (toxicity, patient choice)."""
        rng = self.rng
        if rng.random() < 0.82 or (progression - start).days < 75:
            end, on_therapy = progression, True
        else:
            end = progression - _days(rng.uniform(20, min(900, (progression - start).days - 30)))
            on_therapy = False
        drug_end = {d: e for d, e in drug_end.items() if e < end}
        return _Line(number, regimen, drugs, start, end, progression, response, on_therapy, drug_end)

    def _fixed(self, number: int, regimen: str | None, drugs: tuple[str, ...], start: dt.date,
               progression: dt.date, response: str, length: int) -> _Line:
        planned_end = start + _days(length)
        if progression <= planned_end:
            end, on_therapy = progression, True
        else:
            end, on_therapy = planned_end, False
        return _Line(number, regimen, drugs, start, end, progression, response, on_therapy, {})

    def _finish(self, line: _Line) -> _Line:
        """Toxicity stops and clinicians' refractoriness assertions, consistent with the line's dates."""
        rng = self.rng
        candidates = [d for d in line.drugs if d not in ("dexamethasone", "prednisone")
                      and d not in line.drug_end
                      and not (line.maintenance and d in line.maintenance["drugs"])]
        if candidates and rng.random() < 0.07 and (line.end - line.start).days > 70:
            weights = {d: (5 if d in NEUROTOXIC else 3 if d in ("carfilzomib", "lenalidomide",
                                                                "belantamab_mafodotin") else 1) for d in candidates}
            drug = _weighted(rng, weights)
            line.drug_end[drug] = line.start + _days(rng.uniform(30, (line.end - line.start).days - 1))
            line.stopped = (drug,)
        refractory = sorted(line.refractory())
        if refractory and rng.random() < 0.06:
            line.asserted_refractory = (rng.choice(refractory),)
        return line

    def _relapse_line(self, number: int, start: dt.date, state: _State, lines: list[_Line]) -> _Line:
        rng = self.rng
        if rng.random() < 0.03:
            drugs = rng.choice(_OFF_CATALOGUE)
            regimen = None
            info = _Relapse(12, 2016, _C, (1, 1, 1))
        else:
            regimen = self._choose_relapse(number, start, state)
            drugs = REGIMEN_COMPONENTS[regimen]
            info = RELAPSE_REGIMENS[regimen]
        response = self._response(number, regimen)
        progression = start + _days(self._pfs_days(info.pfs, response, number))
        if info.course == _CELL:  # a single infusion: the line ends the day it starts
            line = _Line(number, regimen, drugs, start, start, max(progression, start + _days(21)), response,
                         False, {})
            return self._finish(line)
        drug_end: dict[str, dt.date] = {}
        for drug, days in info.partial:
            drug_end[drug] = start + _days(days - rng.randint(3, 10))
        if info.course == _F:
            line = self._fixed(number, regimen, drugs, start, progression, response, info.fixed_days - rng.randint(0, 20))
        else:
            line = self._continuous(number, regimen, drugs, start, progression, response, drug_end)
        # Salvage autologous transplant after re-induction at first relapse (Myeloma X): long first remission.
        first = lines[0]
        if (number == 2 and regimen in ("vcd", "kd", "dkd", "dvd", "isa_kd", "krd") and first.transplant is not None
                and self.age_dx + (start - first.start).days / 365.25 < 70
                and (first.progression - _date(first.transplant["date"])).days > 18 * 30
                and response not in _NO_RESPONSE and rng.random() < 0.35):
            asct = start + _days(rng.randint(120, 170))
            if asct + _days(60) < line.progression:
                line.end = min(line.end, asct - _days(rng.randint(20, 40)))
                line.drug_end = {d: e for d, e in line.drug_end.items() if e < line.end}
                line.on_therapy = False
                line.transplant = {"kind": "autologous", "date": _iso(asct)}
        elif (number in (2, 3) and self.age_dx < 60 and self.high_risk and rng.random() < 0.04
              and response in ("sCR", "CR", "VGPR") and (line.progression - start).days > 240):
            allo = start + _days(rng.randint(150, 200))
            if allo + _days(60) < line.progression:
                line.end = min(line.end, allo - _days(rng.randint(20, 40)))
                line.drug_end = {d: e for d, e in line.drug_end.items() if e < line.end}
                line.on_therapy = False
                line.transplant = {"kind": "allogeneic", "date": _iso(allo)}
        return self._finish(line)

    def _choose_relapse(self, number: int, start: dt.date, state: _State) -> str:
        rng = self.rng
        bucket = 0 if number == 2 else 1 if number <= 4 else 2
        year = start.year
        age_now = self.age_dx + (start - self.diagnosis).days / 365.25
        frail = age_now >= 80 or not self.fit_at_dx
        weights: dict[str, float] = {}
        triple_exposed = bool(state.exposed & IMIDS) and bool(state.exposed & PIS) and bool(state.exposed & ANTI_CD38)
        for regimen, info in RELAPSE_REGIMENS.items():
            w = info.weights[bucket]
            if w <= 0 or year < info.year:
                continue
            if year >= 2017 and regimen in _SUPERSEDED:
                w *= 0.35
            comps = set(REGIMEN_COMPONENTS[regimen])
            active = comps - {"dexamethasone", "prednisone"}
            if "lenalidomide" in comps:
                w *= 0.02 if "lenalidomide" in state.refractory else 0.7 if "lenalidomide" in state.exposed else 1.0
            if comps & ANTI_CD38:
                w *= 0.05 if state.refractory & ANTI_CD38 else 0.5 if state.exposed & ANTI_CD38 else 1.0
            if "pomalidomide" in comps and "pomalidomide" in state.refractory:
                w *= 0.05
            if "carfilzomib" in comps and "carfilzomib" in state.refractory:
                w *= 0.1
            if "bortezomib" in comps and "bortezomib" in state.refractory:
                w *= 0.2
            if active and active <= state.refractory:
                w *= 0.1
            if regimen in state.regimens:
                w *= 0.05
            if regimen in ("ide_cel", "teclistamab", "elranatamab", "linvoseltamab") and not triple_exposed:
                w *= 0.02
            if regimen == "cilta_cel" and not (triple_exposed or "lenalidomide" in state.refractory):
                w *= 0.02
            if comps & BCMA and state.exposed & BCMA:
                w *= 0.3
            if regimen == "talquetamab" and state.exposed & BCMA:
                w *= 3
            if regimen in ("cilta_cel", "ide_cel") and (age_now > 78 or frail):
                w *= 0.05
            if regimen.startswith("ven_") and "t(11;14)" not in (self.findings or ()):
                w *= 0.01
            elif regimen.startswith("ven_"):
                w *= 6
            if frail:
                if regimen in ("rd", "pd", "kd", "ird", "sd", "dara_mono", "vd"):
                    w *= 2
                if regimen in ("dcep", "dt_pace", "vdt_pace", "pan_vd"):
                    w *= 0.05
            if (self.emd or self.pcl) and regimen in ("dcep", "dt_pace", "vdt_pace", "pld_vd", "dara_mono"):
                w *= 4
            if "carfilzomib" in comps and self.nyha_base >= 3:
                w *= 0.2
            weights[regimen] = w
        if not weights:
            return "vd" if year >= 2005 else "td"
        return _weighted(rng, weights)

    # ------------------------------------------------------------------ the document
    def _shift(self, lines: list[_Line], days: int) -> None:
        delta = _days(days)
        for line in lines:
            line.start += delta
            line.end += delta
            line.progression += delta
            line.drug_end = {d: e + delta for d, e in line.drug_end.items()}
            if line.maintenance_end is not None:
                line.maintenance_end += delta
            if line.transplant is not None:
                line.transplant = {**line.transplant, "date": _iso(_date(line.transplant["date"]) + delta)}
            if line.maintenance is not None:
                m = dict(line.maintenance)
                m["start"] = _iso(_date(m["start"]) + delta)
                if "end" in m:
                    m["end"] = _iso(_date(m["end"]) + delta)
                line.maintenance = m
        self.relapse += delta
        self.assessment += delta

    def _document(self, lines: list[_Line], diagnosis: dt.date) -> dict[str, Any]:
        rng = self.rng
        years = (self.assessment - diagnosis).days / 365.25
        age = min(100, int(self.age_dx + years))
        late = len(lines) >= 4
        if age < 70:
            frailty = _weighted(rng, {"fit": 66 - (10 if late else 0), "intermediate": 24, "frail": 10})
        elif age < 80:
            frailty = _weighted(rng, {"fit": 38, "intermediate": 36, "frail": 26 + (8 if late else 0)})
        else:
            frailty = _weighted(rng, {"fit": 10, "intermediate": 40, "frail": 50})
        ecog = {"fit": _weighted(rng, {0: 45, 1: 45, 2: 10}),
                "intermediate": _weighted(rng, {0: 10, 1: 50, 2: 35, 3: 5}),
                "frail": _weighted(rng, {1: 20, 2: 45, 3: 30, 4: 5})}[frailty]
        eligible = (age < 70 and frailty == "fit" and ecog <= 1 and rng.random() < 0.75) or \
                   (age < 75 and frailty == "fit" and rng.random() < 0.15)
        exposed = {d for line in lines for d in line.last_doses()}
        stopped = {d for line in lines for d in line.stopped}
        if stopped & NEUROTOXIC:
            grade = _weighted(rng, {1: 10, 2: 55, 3: 30, 4: 5})
        elif exposed & NEUROTOXIC:
            grade = _weighted(rng, {0: 50, 1: 31, 2: 14, 3: 4.5, 4: 0.5})
        else:
            grade = _weighted(rng, {0: 90, 1: 8, 2: 2})
        nyha = self.nyha_base if rng.random() < 0.97 else min(4, self.nyha_base + 1)
        crcl = rng.gauss(140 - 1.1 * age, 18)
        if rng.random() < 0.08:
            crcl *= 0.4
        crcl = max(8.0, min(150.0, crcl))
        doc: dict[str, Any] = {"id": self.pid, "assessmentDate": _iso(self.assessment), "age": age}
        if rng.random() > 0.04:
            doc["frailty"] = frailty
        if rng.random() > 0.03:
            doc["ecog"] = ecog
        if rng.random() > 0.03:
            doc["transplantEligible"] = eligible
        if rng.random() > 0.3:
            doc["donorAvailable"] = age < 65 and rng.random() < 0.15
        if rng.random() > 0.25:
            doc["prefersOral"] = rng.random() < 0.2
        if self.findings is not None and rng.random() > 0.12:
            if len(lines) > 1 and rng.random() < 0.15:
                tested = lines[0].start - _days(rng.randint(3, 30))  # FISH at diagnosis only (stale)
            else:
                tested = min(self.assessment, self.relapse + _days(rng.randint(-25, 14)))
            doc["cytogenetics"] = {"tested": _iso(tested), "findings": list(self.findings)}
        if rng.random() > 0.03:
            doc["neuropathyGrade"] = grade
            doc["neuropathyPainful"] = grade >= 1 and rng.random() < 0.25
        doc["heartFailureNYHA"] = nyha
        if rng.random() < 0.3 or nyha >= 2:
            doc["lvef"] = rng.randint(25, 50) if nyha >= 2 else rng.randint(50, 72)
        if rng.random() > 0.1:
            doc["uncontrolledHypertension"] = rng.random() < 0.06
        if rng.random() > 0.05:
            doc["cardiovascularRiskFactors"] = rng.random() < min(0.7, max(0.1, 0.25 + 0.01 * (age - 60)))
        if rng.random() > 0.35:
            doc["vteHighRisk"] = rng.random() < 0.12
        if rng.random() > 0.03:
            doc["creatinineClearance"] = round(crcl, 1) if rng.random() < 0.1 else int(round(crcl))
        if rng.random() > 0.05:
            doc["extramedullaryDisease"] = self.emd
            doc["plasmaCellLeukemia"] = self.pcl
        kind = "biochemical" if rng.random() < 0.3 else "clinical"
        relapse: dict[str, Any] = {"date": _iso(self.relapse), "kind": kind}
        if rng.random() > 0.1:
            aggressive = rng.random() < (0.2 if kind == "clinical" else 0.05) or self.pcl
            relapse["tempo"] = "aggressive" if aggressive else "indolent"
        doc["relapse"] = relapse
        doc["lines"] = [line.to_dict(rng) for line in lines]
        if rng.random() < 0.3:
            doc["labs"] = self._labs(lines[-1], kind)
        elif rng.random() < 0.2:
            doc["labs"] = []
        return doc

    def _labs(self, last: _Line, kind: str) -> list[dict[str, Any]]:
        """M-protein (or free light chain) results around the last line: nadir, then the rise at relapse."""
        rng = self.rng
        light_chain = rng.random() < 0.15
        baseline = rng.uniform(1.5, 4.5)
        nadir = rng.choice((0.0, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0))
        rise = max(0.5, nadir * rng.uniform(0.3, 1.2)) + (rng.uniform(0.5, 1.5) if kind == "clinical" else 0.0)
        span = max(1, (last.progression - last.start).days)
        points = [
            (last.start, baseline),
            (last.start + _days(span * 0.4), nadir),
            (last.start + _days(span * 0.7), nadir),
            (last.progression, nadir + rise),
        ]
        if rng.random() < 0.6:
            points.append((min(self.assessment, last.progression + _days(rng.randint(14, 35))), nadir + rise * 1.1))
        labs = []
        for day, value in points:
            if light_chain:
                labs.append({"date": _iso(day), "iFLC": round(value * 150, 1), "uFLC": round(rng.uniform(3, 15), 1)})
            else:
                labs.append({"date": _iso(day), "mSpike": round(value, 2)})
        return labs


class _State:
    """What the patient received and is refractory to, after the lines so far."""

    def __init__(self) -> None:
        self.exposed: set[str] = set()
        self.refractory: set[str] = set()
        self.regimens: set[str] = set()

    def update(self, line: _Line) -> None:
        self.exposed.update(line.last_doses())
        self.refractory.update(line.refractory())
        if line.regimen:
            self.regimens.add(line.regimen)


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# ---------------------------------------------------------------------------------------------- defects

_MISSPELLED = {"lenalidomide": "lenalidomid", "bortezomib": "bortezomibe", "daratumumab": "daratumab",
               "dexamethasone": "dexamethason", "pomalidomide": "pomalidomid", "carfilzomib": "carfilzomibb"}


def _line_with_drugs(doc: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    lines = [line for line in doc.get("lines", []) if line.get("drugs")]
    return rng.choice(lines) if lines else None


def _unknown_drug(doc: dict[str, Any], rng: random.Random) -> bool:
    line = _line_with_drugs(doc, rng)
    if line is None:
        return False
    i = rng.randrange(len(line["drugs"]))
    item = line["drugs"][i]
    name = item["drug"] if isinstance(item, dict) else item
    wrong = _MISSPELLED.get(name, name.upper() + "-X")
    if isinstance(item, dict):
        line["drugs"][i] = {**item, "drug": wrong}
    else:
        line["drugs"][i] = wrong
    return True


def _unknown_regimen(doc: dict[str, Any], rng: random.Random) -> bool:
    lines = [line for line in doc["lines"] if "regimen" in line]
    if not lines:
        return False
    line = rng.choice(lines)
    line["regimen"] = rng.choice(("VRd", "vrd-lite", "dara-vd", "kd56", line["regimen"] + "_x"))
    return True


def _end_before_start(doc: dict[str, Any], rng: random.Random) -> bool:
    line = rng.choice(doc["lines"])
    line["end"] = _iso(_date(line["start"]) - _days(rng.randint(1, 200)))
    return True


def _progression_before_start(doc: dict[str, Any], rng: random.Random) -> bool:
    line = rng.choice(doc["lines"])
    line["progression"] = _iso(_date(line["start"]) - _days(rng.randint(1, 200)))
    return True


def _bad_response(doc: dict[str, Any], rng: random.Random) -> bool:
    line = rng.choice(doc["lines"])
    line["bestResponse"] = rng.choice(("nCR", "partial response", "vgpr", "VGPR+", "PR/VGPR", "stable"))
    return True


def _missing_assessment(doc: dict[str, Any], rng: random.Random) -> bool:
    del doc["assessmentDate"]
    return True


def _assessment_null(doc: dict[str, Any], rng: random.Random) -> bool:
    doc["assessmentDate"] = None
    return True


def _age_as_text(doc: dict[str, Any], rng: random.Random) -> bool:
    doc["age"] = rng.choice(("sixty-seven", f"{doc['age']} years", "unknown"))
    return True


def _age_out_of_range(doc: dict[str, Any], rng: random.Random) -> bool:
    doc["age"] = rng.choice((-3, 134, 250))
    return True


def _duplicate_line_number(doc: dict[str, Any], rng: random.Random) -> bool:
    if len(doc["lines"]) < 2:
        return False
    k = rng.randrange(1, len(doc["lines"]))
    doc["lines"][k]["number"] = doc["lines"][k - 1]["number"]
    return True


def _line_number_gap(doc: dict[str, Any], rng: random.Random) -> bool:
    for line in doc["lines"]:
        line["number"] += 1  # no line 1
    return True


def _bad_date(doc: dict[str, Any], rng: random.Random) -> bool:
    line = rng.choice(doc["lines"])
    key = rng.choice(("start", "end", "progression"))
    year = _date(line[key]).year
    line[key] = rng.choice((f"{year}-02-30", f"{year}-13-01", f"{year}/05/04", "last spring"))
    return True


def _event_after_assessment(doc: dict[str, Any], rng: random.Random) -> bool:
    last = doc["lines"][-1]
    doc["assessmentDate"] = _iso(_date(last["progression"]) - _days(rng.randint(1, 60)))
    return True


def _unknown_finding(doc: dict[str, Any], rng: random.Random) -> bool:
    cyto = doc.get("cytogenetics")
    if cyto is None:
        doc["cytogenetics"] = cyto = {"tested": doc["relapse"]["date"], "findings": []}
    cyto["findings"] = list(cyto["findings"]) + [rng.choice(("t(11:14)", "del17p", "1q+", "hyperdiploid"))]
    return True


def _ecog_out_of_range(doc: dict[str, Any], rng: random.Random) -> bool:
    doc["ecog"] = rng.choice((5, 6, -1))
    return True


def _negative_clearance(doc: dict[str, Any], rng: random.Random) -> bool:
    doc["creatinineClearance"] = -rng.randint(1, 60)
    return True


def _boolean_as_text(doc: dict[str, Any], rng: random.Random) -> bool:
    key = rng.choice(("transplantEligible", "extramedullaryDisease", "cardiovascularRiskFactors"))
    doc[key] = rng.choice(("yes", "no", "unknown"))
    return True


def _bad_frailty(doc: dict[str, Any], rng: random.Random) -> bool:
    doc["frailty"] = rng.choice(("robust", "unfit", "moderate", "pre-frail"))
    return True


def _lines_not_a_list(doc: dict[str, Any], rng: random.Random) -> bool:
    first = doc["lines"][0]
    doc["lines"] = first.get("regimen", "VRd")
    return True


def _refractory_drug_not_given(doc: dict[str, Any], rng: random.Random) -> bool:
    line = rng.choice(doc["lines"])
    given = {d["drug"] if isinstance(d, dict) else d for d in line.get("drugs", [])}
    given |= set(REGIMEN_COMPONENTS.get(line.get("regimen", ""), ()))
    if "maintenance" in line:
        given |= set(line["maintenance"]["drugs"])
    choices = [d for d in ("pomalidomide", "carfilzomib", "selinexor", "teclistamab", "isatuximab") if d not in given]
    line["refractoryTo"] = [rng.choice(choices)]
    return True


def _maintenance_end_before_start(doc: dict[str, Any], rng: random.Random) -> bool:
    lines = [line for line in doc["lines"] if "maintenance" in line and "end" in line["maintenance"]]
    if not lines:
        return False
    m = rng.choice(lines)["maintenance"]
    m["end"] = _iso(_date(m["start"]) - _days(rng.randint(1, 90)))
    return True


def _transplant_before_line(doc: dict[str, Any], rng: random.Random) -> bool:
    lines = [line for line in doc["lines"] if "transplant" in line]
    if not lines:
        return False
    line = rng.choice(lines)
    line["transplant"] = {**line["transplant"], "date": _iso(_date(line["start"]) - _days(rng.randint(5, 90)))}
    return True


def _missing_id(doc: dict[str, Any], rng: random.Random) -> bool:
    doc["id"] = rng.choice(("", None))
    return True


def _relapse_after_assessment(doc: dict[str, Any], rng: random.Random) -> bool:
    doc["relapse"]["date"] = _iso(_date(doc["assessmentDate"]) + _days(rng.randint(1, 90)))
    return True


def _line_without_drugs(doc: dict[str, Any], rng: random.Random) -> bool:
    line = rng.choice(doc["lines"])
    line.pop("regimen", None)
    line.pop("drugs", None)
    line.pop("stoppedForToxicity", None)
    line.pop("refractoryTo", None)
    if "maintenance" in line:
        line.pop("maintenance")
    return True


#: Every defect the generator can inject, by name: each returns False when it does not apply to the document.
DEFECTS: dict[str, Callable[[dict[str, Any], random.Random], bool]] = {
    "unknown-drug": _unknown_drug,
    "unknown-regimen": _unknown_regimen,
    "end-before-start": _end_before_start,
    "progression-before-start": _progression_before_start,
    "bad-response-code": _bad_response,
    "missing-assessment-date": _missing_assessment,
    "null-assessment-date": _assessment_null,
    "age-as-text": _age_as_text,
    "age-out-of-range": _age_out_of_range,
    "duplicate-line-number": _duplicate_line_number,
    "line-number-gap": _line_number_gap,
    "impossible-date": _bad_date,
    "event-after-assessment": _event_after_assessment,
    "unknown-cytogenetic-finding": _unknown_finding,
    "ecog-out-of-range": _ecog_out_of_range,
    "negative-creatinine-clearance": _negative_clearance,
    "boolean-as-text": _boolean_as_text,
    "bad-frailty-code": _bad_frailty,
    "lines-not-a-list": _lines_not_a_list,
    "refractory-drug-not-given": _refractory_drug_not_given,
    "maintenance-end-before-start": _maintenance_end_before_start,
    "transplant-before-line": _transplant_before_line,
    "missing-id": _missing_id,
    "relapse-after-assessment": _relapse_after_assessment,
    "line-without-regimen-or-drugs": _line_without_drugs,
}


def _inject_defect(doc: dict[str, Any], rng: random.Random) -> str:
    names = list(DEFECTS)
    rng.shuffle(names)
    for name in names:
        if DEFECTS[name](doc, rng):
            return name
    raise AssertionError("no defect applies")  # pragma: no cover - end-before-start always applies
