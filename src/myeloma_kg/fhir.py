"""Import FHIR R4 / mCODE Bundles as patient documents (issue 7).

A hospital's record of a myeloma patient leaves the EHR as a FHIR Bundle (mCODE profiles for the
oncology parts). :func:`from_fhir` parses the Bundle with the ``fhir.resources`` model library (its
``R4B`` package: R4B and R4 share every resource read here) and builds a patient document of issue 3
plus an :class:`ImportReport` that says what was mapped, what was inferred and what the rules will miss.

What is read, and how (every code below is checked against a published source named beside it):

* **Patient** — ``birthDate`` gives ``age`` in whole years at the assessment date (a partial birth date
  such as ``1964`` is read as its first day and reported as approximate). ``id`` is the Patient's id
  unless ``ImportOptions.patient_id`` is given.
* **The myeloma Condition** — ICD-10 / ICD-10-CM ``C90.0`` and its children (``C90.00``, ``C90.01``,
  ``C90.02``), or SNOMED CT ``109989006`` |Multiple myeloma|. No SNOMED descendant of 109989006 is
  listed: none could be verified here, so add the ones your terminology server returns with
  ``ImportOptions.myeloma_snomed_codes``. A Bundle with no such Condition raises
  :class:`NoMyelomaConditionError`. ICD-10 ``C90.1`` (plasma cell leukaemia) sets ``plasmaCellLeukemia``.
* **Medications** — MedicationStatement, MedicationAdministration and MedicationRequest (mCODE
  cancer-related medication profiles); the drug is read from ``medicationCodeableConcept`` or the
  referenced (or contained) Medication, ingredients included. A drug is recognised by code first —
  the RxNorm CUI or ATC code **held by the knowledge base** (:class:`~myeloma_kg.kb.KnowledgeBase`,
  never a table of this module) — then by name: the knowledge base's label or an alternative label
  as a whole word of the coding's display or the text. Anything else is a warning carrying its code
  and text; nothing is dropped silently. An ATC code two drugs share (L01DB01: doxorubicin and
  pegylated liposomal doxorubicin) is settled by name or reported. Dates: ``effective[x]`` of statements
  and administrations (an administration is one dose); for a MedicationRequest
  ``dosageInstruction.timing.repeat.boundsPeriod``, else ``dispenseRequest.validityPeriod``, else
  ``authoredOn`` (start only). Active without an end = ongoing; completed or stopped without an end = last
  dose unknown (a warning; the line's end stands for it). Records entered in error, not taken, not done,
  cancelled or draft, and requests of intent proposal, plan or option, were not given (listed as ignored).
  A status reason naming toxicity or intolerance puts the drug in ``stoppedForToxicity``.
* **Lines of therapy** — see :class:`LineRule` (the rule is inferred, configurable and reported).
* **Procedure** — stem-cell transplant: SNOMED CT 425983008 |Autologous peripheral blood stem cell
  transplant| (autologous), 234336002 |Hemopoietic stem cell transplant| and 23719005 |Bone marrow
  transplant| (kind read from the text: autologous / allogeneic), or a text naming a stem-cell or bone
  marrow transplant. No allogeneic-specific SNOMED code could be verified: allogeneic transplants are
  recognised by their text.
* **Observations** — ECOG, LOINC 89247-1 (``valueInteger`` or the LOINC answers LA9622-7 ... LA9627-6);
  mCODE cancer disease status, LOINC 97509-4 (and 88040-1 of mCODE STU1), value SNOMED CT 271299001
  |Patient's condition worsened| = progression, dated by ``effective[x]``; its mCODE evidence-type
  extension decides the relapse kind (laboratory only, 386344002 → biochemical; imaging 363679005,
  histopathology 252416005, symptoms 711015009 or physical examination 5880005 → clinical);
  serum M-protein 33358-3, 24-hour urine M-protein 42482-0, free kappa 36916-5 and free lambda
  33944-0 light chains (ratio 48378-4 only to tell the involved chain) → ``labs``; creatinine
  clearance 35591-7 (Cockcroft-Gault) or 2164-2 (24-hour urine) → ``creatinineClearance``;
  cytogenetics: mCODE genetic variant 69548-6 (ISCN component 81291-7, cytogenetic location 48001-2,
  value LA9633-4 present / LA9634-2 absent) or an Observation whose code text names FISH, karyotype or
  cytogenetics → ``cytogenetics``; an IMWG response category (sCR ... PD) in an Observation whose code
  names a response → the line's ``bestResponse`` (by name: no verified code exists for IMWG response).
* **Not in FHIR** — frailty (no FHIR or mCODE element carries an IMWG frailty category), transplant
  eligibility, donor availability, preference for oral therapy, relapse tempo, neuropathy grade and
  the comorbidity flags are not read: pass them as ``ImportOptions.overrides`` (CLI ``--set``); the
  report lists the ones still missing.

The assessment date is ``ImportOptions.assessment_date`` when given, else the Bundle's ``timestamp``
(when the extract was made), else the latest date of any fact read; never the clock, so that an import
is reproducible. Facts dated after the assessment date are left out (and reported).

>>> def entry(resource):
...     return {"resource": resource}
>>> coded = lambda system, code: {"coding": [{"system": system, "code": code}]}
>>> bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": "2025-11-03T09:00:00Z", "entry": [
...     entry({"resourceType": "Patient", "id": "pt-fhir", "birthDate": "1964-05-20"}),
...     entry({"resourceType": "Condition", "subject": {"reference": "Patient/pt-fhir"},
...            "code": coded("http://hl7.org/fhir/sid/icd-10-cm", "C90.00")}),
...     *[entry({"resourceType": "MedicationStatement", "status": "completed", "subject": {"reference": "Patient/pt-fhir"},
...              "medicationCodeableConcept": {"text": name},
...              "effectivePeriod": {"start": "2022-12-01", "end": "2023-02-13"}})
...       for name in ("Bortezomib", "Lenalidomide", "Dexamethasone")]]}
>>> result = from_fhir(bundle)
>>> result.document["id"], result.document["age"], [line["regimen"] for line in result.document["lines"]]
('pt-fhir', 61, ['vrd'])
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import DataError

__all__ = [
    "NOT_IN_FHIR",
    "OPTIONAL_NOT_IN_FHIR",
    "FhirBundleError",
    "FhirImportError",
    "ImportNote",
    "ImportOptions",
    "ImportReport",
    "ImportResult",
    "LineRule",
    "NoMyelomaConditionError",
    "from_fhir",
    "load_bundle",
]

# ------------------------------------------------------------------------------------------ code systems

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
#: FHIR ICD-10 system URIs (WHO and the US clinical modification); other ICD-10 national editions are
#: recognised by "icd-10" in the URI.
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm")
MCODE_EVIDENCE_TYPE = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-evidence-type"

#: SNOMED CT 109989006 |Multiple myeloma (disorder)|. Descendants: none verified, see the module doc.
MYELOMA_SNOMED = frozenset({"109989006"})

# LOINC observation codes (mCODE IG; LOINC tables of public lab mappings).
ECOG = "89247-1"
DISEASE_STATUS = frozenset({"97509-4", "88040-1"})
SERUM_M = "33358-3"
URINE_M_24H = "42482-0"
FREE_KAPPA = "36916-5"
FREE_LAMBDA = "33944-0"
FLC_RATIO = "48378-4"
CREATININE_CLEARANCE = frozenset({"35591-7", "2164-2"})
GENETIC_VARIANT = "69548-6"
VARIANT_ISCN = "81291-7"
CYTOGENETIC_LOCATION = "48001-2"
ECOG_ANSWERS = {"LA9622-7": 0, "LA9623-5": 1, "LA9624-3": 2, "LA9625-0": 3, "LA9626-8": 4, "LA9627-6": 5}
PRESENT, ABSENT = "LA9633-4", "LA9634-2"

# SNOMED CT values of the mCODE Condition Status Trend value set and evidence types.
WORSENED = "271299001"
EVIDENCE_LABORATORY = "386344002"
EVIDENCE_CLINICAL = frozenset({"363679005", "252416005", "711015009", "5880005"})

# SNOMED CT transplant procedures: code -> kind (None = read the kind from the text).
TRANSPLANT_CODES: dict[str, str | None] = {
    "425983008": "autologous",  # Autologous peripheral blood stem cell transplant
    "234336002": None,  # Hemopoietic stem cell transplant
    "23719005": None,  # Bone marrow transplant
}

RESPONSE_RANK = {"sCR": 7, "CR": 6, "VGPR": 5, "PR": 4, "MR": 3, "SD": 2, "PD": 1}
_RESPONSE_NAMES = [
    ("stringent complete response", "sCR"), ("very good partial response", "VGPR"),
    ("complete response", "CR"), ("partial response", "PR"), ("minimal response", "MR"),
    ("minor response", "MR"), ("stable disease", "SD"), ("progressive disease", "PD"),
]

#: Cytogenetic findings of the patient contract, with the spellings recognised (ISCN and common text).
FINDING_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (finding, re.compile(pattern, re.IGNORECASE))
    for finding, pattern in (
        ("t(11;14)", r"t\s*\(\s*11\s*;\s*14\s*\)|IGH\s*[-/:]\s*CCND1|CCND1\s*[-/:]\s*IGH"),
        ("t(4;14)", r"t\s*\(\s*4\s*;\s*14\s*\)|IGH\s*[-/:]\s*(FGFR3|NSD2|MMSET|WHSC1)|(FGFR3|NSD2)\s*[-/:]\s*IGH"),
        ("t(14;16)", r"t\s*\(\s*14\s*;\s*16\s*\)|IGH\s*[-/:]\s*MAF\b|\bMAF\s*[-/:]\s*IGH"),
        ("t(14;20)", r"t\s*\(\s*14\s*;\s*20\s*\)|IGH\s*[-/:]\s*MAFB|MAFB\s*[-/:]\s*IGH"),
        ("del(17p)", (r"del\s*\(\s*17\s*p|del\s*\(\s*17\s*\)\s*\(\s*p|17p[0-9.]*\s*(\([^)]*\)\s*)?(deletion|del\b|-)"
                      r"|deletion\s+(of\s+)?17p|TP53\)?\s+deletion|monosomy\s+17\b")),
        ("amp(1q)", r"amp\s*\(\s*1\s*q|1q(21)?\s*amplification|amplification\s+(of\s+)?1q|1q21\s*amp"),
        ("gain(1q)", r"gain\s*\(\s*1\s*q|\+\s*1q|1q(21)?\s*gain|gain\s+(of\s+)?1q|dup\s*\(\s*1\s*\)\s*\(\s*q"),
    )
)
_NEGATIVE = re.compile(r"\b(absent|negative|not detected|no abnormalit\w*|normal|none detected)\b", re.IGNORECASE)
_POSITIVE = re.compile(r"\b(present|positive|detected)\b", re.IGNORECASE)
_CYTOGENETIC_TEXT = re.compile(r"cytogenet|\bFISH\b|karyotyp|chromosom|\bISCN\b", re.IGNORECASE)
_TRANSPLANT_TEXT = re.compile(r"stem[- ]cell transplant|\bHSCT\b|\bASCT\b|\bSCT\b|bone marrow transplant"
                              r"|\bPBSCT\b|hematopoietic.*transplant|haematopoietic.*transplant", re.IGNORECASE)
_ALLO_TEXT = re.compile(r"\ballo|allogene", re.IGNORECASE)
_AUTO_TEXT = re.compile(r"\bauto|autologous|\bASCT\b", re.IGNORECASE)
_TOXICITY_TEXT = re.compile(r"toxicit|adverse|intoleran|side[- ]effect", re.IGNORECASE)

#: Keys of the patient document FHIR does not carry: pass them as overrides.
NOT_IN_FHIR = {
    "frailty": "frailty is not carried by FHIR or mCODE (no element holds an IMWG frailty category)",
    "transplantEligible": "transplant eligibility is a clinical judgement FHIR does not record",
    "donorAvailable": "donor availability is not part of the mCODE record",
    "prefersOral": "the patient's preference for oral therapy is not part of the mCODE record",
    "neuropathyGrade": "neuropathy grade (CTCAE) is not read by this importer",
    "heartFailureNYHA": "heart failure class (NYHA) is not read by this importer",
    "uncontrolledHypertension": "uncontrolled hypertension is not read by this importer",
    "cardiovascularRiskFactors": "cardiovascular risk factors are not read by this importer",
    "vteHighRisk": "venous thromboembolism risk is not read by this importer",
    "extramedullaryDisease": "extramedullary disease is not read by this importer",
}
#: Keys not read from FHIR and not reported as missing (they matter only with another fact: painful
#: neuropathy with a neuropathy grade, LVEF with heart failure).
OPTIONAL_NOT_IN_FHIR = ("neuropathyPainful", "lvef")

_DOC_ORDER = (
    "id", "assessmentDate", "age", "frailty", "ecog", "transplantEligible", "donorAvailable", "prefersOral",
    "cytogenetics", "neuropathyGrade", "neuropathyPainful", "heartFailureNYHA", "lvef", "uncontrolledHypertension",
    "cardiovascularRiskFactors", "vteHighRisk", "creatinineClearance", "extramedullaryDisease",
    "plasmaCellLeukemia", "relapse", "lines", "labs",
)


# ---------------------------------------------------------------------------------------------- errors


class FhirImportError(DataError):
    """A FHIR Bundle cannot be imported as a patient document."""

    kind = "fhir-import-error"


class FhirBundleError(FhirImportError):
    """The input is not a readable FHIR R4 Bundle (bad JSON, not a Bundle, or invalid resources)."""

    kind = "fhir-bundle-error"


class NoMyelomaConditionError(FhirImportError):
    """The Bundle holds no multiple myeloma Condition (ICD-10 C90.0x or SNOMED CT 109989006)."""

    kind = "no-myeloma-condition"


# ---------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class LineRule:
    """How drug exposures are grouped into lines of therapy.

    In the spirit of published line-of-therapy algorithms (and the IMWG definition of a line: induction,
    transplant, consolidation and maintenance given as one plan are one line), exposures are taken in
    order of their start date and:

    1. the first drug opens line 1; the line's *anchor* is its start date;
    2. a documented progression (mCODE disease status "worsened") on or before a drug's start, and after
       the start of the current line, always opens a new line (``progression`` of the old line);
    3. a drug started within ``window_days`` of the anchor joins the line (a combination);
    4. a drug the line already gives joins it (continuation, restart, dose change: never a new line);
    5. a drug started within ``conditioning_days`` before a transplant of the line is its conditioning
       (high-dose melphalan before an autologous transplant is implied by the transplant and not listed);
    6. a new drug started after a transplant of the line and within ``maintenance_days`` of it is
       consolidation or maintenance of that line (``maintenance``); drugs given after the transplant
       are listed under ``maintenance``, the others under ``drugs``;
    7. any other new drug opens a new line.

    Dropping a drug never opens a line. The report says which step placed each exposure.
    """

    window_days: int = 28
    conditioning_days: int = 14
    maintenance_days: int = 180


@dataclass
class ImportOptions:
    """Choices of an import.

    :param assessment_date: the date of the recommendation (default: Bundle.timestamp, else the latest
        fact; facts after it are left out).
    :param patient_id: the document ``id`` (default: the Patient resource's id).
    :param line_rule: the line-of-therapy grouping rule.
    :param involved_light_chain: ``"kappa"`` or ``"lambda"``; default: the higher chain at the first
        date both were measured (reported as inferred).
    :param overrides: document keys FHIR does not carry (``frailty``, ``transplantEligible``,
        ``relapse: {tempo: ...}`` ...), merged over the imported document (mappings merged key by key).
    :param line_overrides: per line number, keys merged over that line (e.g. ``{1: {"bestResponse": "VGPR"}}``).
    :param myeloma_snomed_codes: extra SNOMED CT codes accepted as multiple myeloma (descendants of
        109989006 from your terminology server).
    :param kb: the knowledge base whose drug codes and names are recognised (default: the shipped one).
    """

    assessment_date: _dt.date | str | None = None
    patient_id: str | None = None
    line_rule: LineRule = field(default_factory=LineRule)
    involved_light_chain: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    line_overrides: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    myeloma_snomed_codes: Iterable[str] = ()
    kb: Any = None


# ---------------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ImportNote:
    """One statement of the import report.

    :param field: the document field it concerns (``lines[1].drugs``, ``ecog``), or ``""``.
    :param message: what happened, for a clinician or an integrator.
    :param source: the FHIR resource (``MedicationStatement/ms-1``) when there is one.
    :param code: the code involved as ``system|code`` when there is one.
    :param text: the resource's text or display when there is one.
    """

    field: str
    message: str
    source: str | None = None
    code: str | None = None
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (empty values left out)."""
        return {k: v for k, v in (("field", self.field), ("message", self.message), ("source", self.source),
                                  ("code", self.code), ("text", self.text)) if v}

    def __str__(self) -> str:
        extra = "".join(f" [{x}]" for x in (self.source, self.code) if x)
        text = f' "{self.text}"' if self.text else ""
        return f"{self.field or '(document)'}: {self.message}{text}{extra}"


@dataclass
class ImportReport:
    """What an import mapped, inferred, could not find, and warns about.

    ``mapped``: facts read from a resource into a field. ``inferred``: facts the importer derived (line
    grouping, regimen, progression on therapy, relapse kind, involved light chain, assessment date).
    ``missing``: fields the rules use that the Bundle did not give (frailty is always here unless
    overridden: FHIR does not carry it). ``warnings``: unrecognised drugs or findings and resources that
    could not be used, with their codes and text. ``ignored``: resources read but not needed.
    """

    mapped: list[ImportNote] = field(default_factory=list)
    inferred: list[ImportNote] = field(default_factory=list)
    missing: list[ImportNote] = field(default_factory=list)
    warnings: list[ImportNote] = field(default_factory=list)
    ignored: list[ImportNote] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {name: [n.to_dict() for n in getattr(self, name)]
                for name in ("mapped", "inferred", "missing", "warnings", "ignored")}

    def format_text(self, *, ignored: bool = False) -> str:
        """The report as text, one section per kind of statement."""
        out = []
        for name in ("mapped", "inferred", "missing", "warnings") + (("ignored",) if ignored else ()):
            notes = getattr(self, name)
            if notes:
                out.append(f"{name} ({len(notes)}):")
                out.extend(f"  - {n}" for n in notes)
        return "\n".join(out)


@dataclass
class ImportResult:
    """A patient document imported from FHIR, with its report."""

    document: dict[str, Any]
    report: ImportReport
    source: str = "<fhir>"

    def patient_document(self) -> Any:
        """The document as a :class:`~myeloma_kg.patient.PatientDocument` (its RDF graph)."""
        from .patient import PatientDocument

        return PatientDocument.from_dict(self.document, source=self.source)

    def to_yaml(self) -> str:
        """The document as YAML (the form people read and edit)."""
        import yaml

        return yaml.safe_dump(self.document, sort_keys=False, allow_unicode=True, default_flow_style=None, width=110)

    def to_json(self) -> str:
        """The document as JSON."""
        return json.dumps(self.document, indent=2, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- reading


def load_bundle(bundle: Any, source: str | None = None) -> Any:
    """Parse a Bundle with the FHIR model library.

    :param bundle: a path, JSON text, a mapping, or a ``fhir.resources`` Bundle.
    :returns: a ``fhir.resources.R4B.bundle.Bundle``.
    :raises FhirBundleError: when the input is not a valid FHIR Bundle (with the failing element paths).
    """
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    if isinstance(bundle, Bundle):
        return bundle
    where = source
    data = bundle
    if isinstance(bundle, Path) or (isinstance(bundle, str) and not bundle.lstrip().startswith("{")):
        path = Path(bundle)
        where = where or str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise FhirBundleError(f"cannot read the Bundle: {exc.strerror or exc}", source=where) from None
        data = text
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise FhirBundleError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                                  source=where) from None
    if not isinstance(data, Mapping):
        raise FhirBundleError(f"a FHIR Bundle is a JSON object, not a {type(data).__name__}", source=where)
    kind = data.get("resourceType")
    if kind != "Bundle":
        raise FhirBundleError(f"expected a resource of type Bundle, got resourceType {kind!r}; wrap the resources "
                              "in a Bundle (type collection)", source=where)
    try:
        return Bundle.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}" for err in exc.errors()[:5]
        )
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise FhirBundleError(f"not a valid FHIR R4 Bundle: {problems}{more}", source=where) from None
    except Exception as exc:  # noqa: BLE001 - the model library raises a few other types on odd input
        raise FhirBundleError(f"not a valid FHIR R4 Bundle: {exc}", source=where) from None


# ---------------------------------------------------------------------------------------------- helpers


def _as_date(value: Any) -> _dt.date | None:
    """A FHIR date, dateTime or partial date as a calendar date (partial dates: their first day)."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    text = str(value)
    match = re.match(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", text)
    if not match:
        return None
    year, month, day = match.groups()
    return _dt.date(int(year), int(month or 1), int(day or 1))


def _codings(concept: Any) -> list[Any]:
    return list(getattr(concept, "coding", None) or []) if concept is not None else []


def _texts(concept: Any) -> list[str]:
    """The text and every coding display of a CodeableConcept."""
    if concept is None:
        return []
    out = [concept.text] if getattr(concept, "text", None) else []
    out += [c.display for c in _codings(concept) if getattr(c, "display", None)]
    return out


def _label(concept: Any) -> str | None:
    texts = _texts(concept)
    return texts[0] if texts else None


def _code_str(concept: Any) -> str | None:
    codes = [f"{c.system or '?'}|{c.code}" for c in _codings(concept) if getattr(c, "code", None)]
    return ", ".join(codes) if codes else None


def _has_code(concept: Any, system: str, codes: Iterable[str] | str) -> bool:
    wanted = {codes} if isinstance(codes, str) else set(codes)
    return any(c.system == system and c.code in wanted for c in _codings(concept))


def _ref(resource: Any) -> str:
    return f"{resource.get_resource_type()}/{resource.id}" if getattr(resource, "id", None) else \
        resource.get_resource_type()


def _is_icd10(system: str | None) -> bool:
    return bool(system) and (system in ICD10_SYSTEMS or "icd-10" in system.lower() or "icd10" in system.lower())


def _icd10(code: str | None) -> str:
    return (code or "").upper().replace(".", "").strip()


def _effective(resource: Any) -> tuple[_dt.date | None, _dt.date | None]:
    """Start and end of a resource's ``effective[x]`` / ``performed[x]``."""
    for name in ("effectiveDateTime", "performedDateTime", "occurrenceDateTime"):
        value = getattr(resource, name, None)
        if value is not None:
            d = _as_date(value)
            return d, d
    for name in ("effectivePeriod", "performedPeriod"):
        period = getattr(resource, name, None)
        if period is not None:
            return _as_date(period.start), _as_date(period.end)
    value = getattr(resource, "effectiveInstant", None)
    if value is not None:
        d = _as_date(value)
        return d, d
    return None, None


def _number(quantity: Any) -> tuple[float | None, str]:
    if quantity is None or quantity.value is None:
        return None, ""
    return float(quantity.value), (quantity.code or quantity.unit or "").strip()


def _clean(value: float) -> float | int:
    value = round(value, 3)
    return int(value) if value == int(value) else value


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------- drugs


@dataclass(frozen=True)
class _DrugMatch:
    drug: str
    how: str  # "RxNorm 358258", "ATC L01XG01", "name 'bortezomib'"
    by_code: bool


class _DrugIndex:
    """The knowledge base's drug codes and names, for recognising medications."""

    def __init__(self, kb: Any) -> None:
        from rdflib import URIRef
        from rdflib.namespace import RDFS, SKOS

        self.rxnorm: dict[str, str] = {}
        self.atc: dict[str, list[str]] = defaultdict(list)
        names: dict[str, str] = {}
        for drug in kb.drugs():
            if drug.rxnorm_cui:
                self.rxnorm[str(drug.rxnorm_cui)] = drug.id
            if drug.atc_code:
                self.atc[str(drug.atc_code).upper()].append(drug.id)
            labels = {drug.id.replace("_", " "), drug.label}
            labels |= {str(o) for p in (RDFS.label, SKOS.altLabel) for o in kb.inferred.objects(URIRef(drug.iri), p)}
            for label in labels:
                names.setdefault(label.lower(), drug.id)
        self.names = sorted(names.items(), key=lambda kv: -len(kv[0]))
        self._patterns = [(re.compile(r"(?<![a-z0-9])" + re.escape(n) + r"(?![a-z0-9])"), n, d) for n, d in self.names]

    def by_name(self, text: str) -> list[tuple[str, str]]:
        """Drugs named in ``text`` as (drug id, matched name), longest names first, without overlaps."""
        lowered = text.lower()
        taken: list[tuple[int, int]] = []
        found: list[tuple[str, str]] = []
        for pattern, name, drug in self._patterns:
            for m in pattern.finditer(lowered):
                if any(m.start() < e and s < m.end() for s, e in taken):
                    continue
                taken.append((m.start(), m.end()))
                if drug not in [d for d, _ in found]:
                    found.append((drug, name))
        return found

    def recognise(self, concept: Any) -> tuple[list[_DrugMatch], list[str]]:
        """Drugs of a medication CodeableConcept, and notes on codes that did not settle it."""
        notes: list[str] = []
        texts = _texts(concept)
        named = [d for t in texts for d, _ in self.by_name(t)]
        for coding in _codings(concept):
            code = (coding.code or "").strip()
            system = coding.system or ""
            if system == RXNORM and code in self.rxnorm:
                return [_DrugMatch(self.rxnorm[code], f"RxNorm {code}", True)], notes
            if system == ATC and code.upper() in self.atc:
                candidates = self.atc[code.upper()]
                if len(candidates) == 1:
                    return [_DrugMatch(candidates[0], f"ATC {code}", True)], notes
                chosen = [d for d in candidates if d in named]
                if len(chosen) == 1:
                    return [_DrugMatch(chosen[0], f"ATC {code} + name", True)], notes
                notes.append(f"ATC {code} is shared by {', '.join(candidates)} and the name does not settle which")
        unique: list[str] = []
        for drug in named:
            if drug not in unique:
                unique.append(drug)
        return [_DrugMatch(d, "name", False) for d in unique], notes


def _sources(exposures: list[Any]) -> str:
    refs = list(dict.fromkeys(e.source for e in exposures))
    return ", ".join(refs[:3]) + (f" and {len(refs) - 3} more" if len(refs) > 3 else "")


@dataclass
class _Exposure:
    drug: str
    start: _dt.date
    end: _dt.date | None
    ongoing: bool
    source: str
    how: str
    stopped_for_toxicity: bool = False
    end_unknown: bool = False


# ---------------------------------------------------------------------------------------------- import


class _Importer:
    def __init__(self, bundle: Any, options: ImportOptions, source: str) -> None:
        self.bundle = bundle
        self.options = options
        self.source = source
        self.report = ImportReport()
        self.kb = options.kb
        if self.kb is None:
            from .kb import KnowledgeBase

            self.kb = KnowledgeBase.load()
        self.drugs = _DrugIndex(self.kb)
        self.resources: list[tuple[str | None, Any]] = [
            (e.fullUrl, e.resource) for e in (bundle.entry or []) if e.resource is not None
        ]
        self.by_ref: dict[str, Any] = {}
        for full_url, res in self.resources:
            if full_url:
                self.by_ref[full_url] = res
            if getattr(res, "id", None):
                self.by_ref[f"{res.get_resource_type()}/{res.id}"] = res
        self.dates: list[_dt.date] = []

    # -- notes

    def _note(self, kind: str, field_: str, message: str, resource: Any = None, concept: Any = None,
              text: str | None = None) -> None:
        getattr(self.report, kind).append(ImportNote(
            field=field_, message=message, source=_ref(resource) if resource is not None else None,
            code=_code_str(concept), text=text if text is not None else _label(concept)))

    def of_type(self, *types: str) -> list[Any]:
        return [r for _, r in self.resources if r.get_resource_type() in types]

    # -- patient

    def patient(self) -> Any:
        patients = self.of_type("Patient")
        if len(patients) > 1 and not self.options.patient_id:
            raise FhirImportError(
                f"the Bundle holds {len(patients)} Patient resources ({', '.join(_ref(p) for p in patients)}); "
                "import one patient per Bundle, or name the one to import with patient_id / --id",
                source=self.source)
        if len(patients) > 1:
            chosen = [p for p in patients if p.id == self.options.patient_id]
            if not chosen:
                raise FhirImportError(f"no Patient with id {self.options.patient_id!r} in the Bundle",
                                      source=self.source)
            return chosen[0]
        return patients[0] if patients else None

    def _subject_refs(self, patient: Any) -> set[str]:
        refs = set()
        if patient is not None:
            refs.add(f"Patient/{patient.id}")
            refs |= {u for u, r in self.resources if r is patient and u}
        return refs

    def belongs(self, resource: Any, refs: set[str]) -> bool:
        subject = getattr(resource, "subject", None) or getattr(resource, "patient", None)
        ref = getattr(subject, "reference", None) if subject is not None else None
        if not ref or not refs:
            return True
        if ref in refs or ref.split("/_history")[0] in refs:
            return True
        self._note("warnings", "", f"left out: its subject {ref} is not the imported patient", resource,
                   getattr(resource, "code", None))
        return False

    # -- main

    def run(self) -> ImportResult:
        opts = self.options
        patient = self.patient()
        refs = self._subject_refs(patient)
        keep = [r for _, r in self.resources if r.get_resource_type() != "Patient" and self.belongs(r, refs)]
        self.items = keep

        conditions = self.conditions()
        exposures = self.medications()
        transplants = self.procedures()
        obs = self.observations()

        assessment = self.assessment_date(exposures, transplants, obs, conditions)
        exposures = [e for e in exposures if self._before(e.start, assessment, e.source, "drug start")]
        for e in exposures:
            if e.end and e.end > assessment:
                e.end, e.ongoing = None, True
        transplants = [t for t in transplants if self._before(t[0], assessment, t[2], "transplant")]
        progressions = [p for p in obs["progressions"] if self._before(p[0], assessment, p[2], "progression")]
        for key in ("ecog", "crcl", "responses", "labs", "cytogenetics"):
            obs[key] = [row for row in obs[key]
                        if self._before(row[0], assessment, _ref(row[-1]), "observation")]

        doc: dict[str, Any] = {}
        pid = opts.patient_id or (patient.id if patient is not None and patient.id else None) \
            or (self.bundle.id if self.bundle.id else None)
        if not pid:
            pid = "fhir-import"
            self._note("inferred", "id", "neither the Patient nor the Bundle has an id: 'fhir-import' used; "
                       "pass --id")
        doc["id"] = str(pid)
        doc["assessmentDate"] = assessment.isoformat()
        self.age(patient, assessment, doc)
        self.ecog(obs["ecog"], assessment, doc)
        self.cytogenetics(obs["cytogenetics"], assessment, doc)
        self.creatinine(obs["crcl"], assessment, doc)
        if conditions["pcl"]:
            doc["plasmaCellLeukemia"] = True
        lines = self.lines(exposures, transplants, progressions, obs["responses"], assessment)
        relapse = self.relapse(lines, progressions)
        if relapse:
            doc["relapse"] = relapse
        doc["lines"] = lines
        labs = self.labs(obs["labs"], assessment)
        if labs:
            doc["labs"] = labs

        for key, value in opts.overrides.items():
            self._note("mapped", key, f"given as an import option: {value!r}")
        doc = _merge(doc, opts.overrides)
        for number, extra in opts.line_overrides.items():
            for line in doc["lines"]:
                if line.get("number") == int(number):
                    line.update(extra)
                    self._note("mapped", f"lines[{int(number) - 1}]", f"given as an import option: {dict(extra)!r}")
                    break
            else:
                self._note("warnings", f"lines[{int(number) - 1}]", f"import option for line {number} ignored: "
                           "the Bundle gives no such line")
        self.missing(doc)
        ordered = {k: doc[k] for k in _DOC_ORDER if k in doc}
        ordered.update({k: v for k, v in doc.items() if k not in ordered})
        return ImportResult(document=ordered, report=self.report, source=self.source)

    def _before(self, day: _dt.date | None, assessment: _dt.date, source: str, what: str) -> bool:
        if day is not None and day > assessment:
            self.report.ignored.append(ImportNote("", f"{what} on {day} is after the assessment date "
                                                      f"{assessment}: left out", source=source))
            return False
        return True

    # -- conditions

    def conditions(self) -> dict[str, Any]:
        snomed = MYELOMA_SNOMED | set(self.options.myeloma_snomed_codes)
        found, pcl = [], False
        for cond in (r for r in self.items if r.get_resource_type() == "Condition"):
            status = _codings(getattr(cond, "verificationStatus", None))
            if any(c.code in ("entered-in-error", "refuted") for c in status):
                self._note("ignored", "", "Condition marked entered-in-error or refuted", cond, cond.code)
                continue
            myeloma = False
            for c in _codings(cond.code):
                if _is_icd10(c.system) and _icd10(c.code).startswith("C900"):
                    myeloma = True
                elif _is_icd10(c.system) and _icd10(c.code).startswith("C901"):
                    pcl = True
                    self._note("mapped", "plasmaCellLeukemia", "plasma cell leukaemia (ICD-10 C90.1)", cond, cond.code)
                elif c.system == SNOMED and c.code in snomed:
                    myeloma = True
            if myeloma:
                found.append(cond)
                onset = _as_date(getattr(cond, "onsetDateTime", None) or getattr(cond, "recordedDate", None))
                if onset:
                    self.dates.append(onset)
                self._note("mapped", "", "multiple myeloma Condition", cond, cond.code)
            else:
                self._note("ignored", "", "Condition other than multiple myeloma", cond, cond.code)
        if not found:
            conds = self.of_type("Condition")
            seen = "; ".join(f"{_label(c.code) or '?'} ({_code_str(c.code) or 'no code'})" for c in conds) or "none"
            raise NoMyelomaConditionError(
                "the Bundle has no multiple myeloma Condition (ICD-10 C90.0x or SNOMED CT 109989006); "
                f"Conditions found: {seen}. This importer is for relapsed/refractory multiple myeloma.",
                source=self.source)
        return {"myeloma": found, "pcl": pcl}

    # -- medications

    def _medication_concepts(self, resource: Any) -> list[Any]:
        concept = getattr(resource, "medicationCodeableConcept", None)
        if concept is not None:
            return [concept]
        ref = getattr(getattr(resource, "medicationReference", None), "reference", None)
        if not ref:
            return []
        med = None
        if ref.startswith("#"):
            med = next((c for c in (getattr(resource, "contained", None) or []) if c.id == ref[1:]), None)
        else:
            med = self.by_ref.get(ref)
        if med is None:
            self._note("warnings", "lines", f"medication reference {ref} does not resolve in the Bundle", resource)
            return []
        concepts = [med.code] if med.code is not None else []
        for ing in getattr(med, "ingredient", None) or []:
            item = getattr(ing, "itemCodeableConcept", None)
            if item is not None:
                concepts.append(item)
            elif getattr(ing, "itemReference", None) is not None:
                sub = self.by_ref.get(ing.itemReference.reference)
                if sub is not None and getattr(sub, "code", None) is not None:
                    concepts.append(sub.code)
        return concepts

    def medications(self) -> list[_Exposure]:
        exposures: list[_Exposure] = []
        skip_status = {
            "MedicationStatement": {"entered-in-error", "not-taken", "intended", "unknown"},
            "MedicationAdministration": {"not-done", "entered-in-error", "unknown"},
            "MedicationRequest": {"cancelled", "entered-in-error", "draft", "unknown"},
        }
        for res in self.items:
            kind = res.get_resource_type()
            if kind not in skip_status:
                continue
            concepts = self._medication_concepts(res)
            label = next((t for c in concepts for t in _texts(c)), None)
            if res.status in skip_status[kind]:
                self._note("ignored", "lines", f"{kind} with status {res.status}: not given", res,
                           concepts[0] if concepts else None)
                continue
            if kind == "MedicationRequest" and res.intent in ("proposal", "plan", "option"):
                self._note("ignored", "lines", f"MedicationRequest with intent {res.intent}: not an order", res,
                           concepts[0] if concepts else None)
                continue
            start, end = self._medication_dates(res)
            matches: list[_DrugMatch] = []
            for concept in concepts:
                found, notes = self.drugs.recognise(concept)
                for n in notes:
                    self._note("warnings", "lines", n, res, concept)
                if not found:
                    self._note("warnings", "lines", "medication not recognised: no knowledge-base drug has this "
                               "RxNorm or ATC code or name; it is not in the lines of therapy", res, concept)
                for m in found:
                    if not m.by_code and _codings(concept):
                        self._note("inferred", "lines", f"{m.drug} recognised by name; its code is not one the "
                                   "knowledge base holds", res, concept)
                    if m.drug not in [x.drug for x in matches]:
                        matches.append(m)
            if not concepts:
                self._note("warnings", "lines", f"{kind} names no medication", res)
            if not matches:
                continue
            if start is None:
                self._note("warnings", "lines", "medication without a start date: it cannot be placed in a line",
                           res, text=label)
                continue
            status = res.status or ""
            ongoing = end is None and status in ("active", "on-hold", "in-progress")
            end_unknown = end is None and not ongoing and kind != "MedicationAdministration"
            if kind == "MedicationAdministration" and end is None:
                end = start
            if end_unknown:
                self._note("warnings", "lines", f"{kind} is {status or 'without status'} but has no end date: the "
                           "last dose is unknown, so the line's end is used for it", res, text=label)
            reasons = getattr(res, "statusReason", None) or []  # a list, or one concept (MedicationRequest)
            reasons = reasons if isinstance(reasons, list) else [reasons]
            toxic = any(_TOXICITY_TEXT.search(t) for c in reasons for t in _texts(c))
            for m in matches:
                exposures.append(_Exposure(m.drug, start, end, ongoing, _ref(res), m.how,
                                           stopped_for_toxicity=toxic, end_unknown=end_unknown))
                self.dates += [d for d in (start, end) if d]
        exposures.sort(key=lambda e: (e.start, e.source, e.drug))
        return exposures

    def _medication_dates(self, res: Any) -> tuple[_dt.date | None, _dt.date | None]:
        kind = res.get_resource_type()
        if kind in ("MedicationStatement", "MedicationAdministration"):
            return _effective(res)
        for dosage in res.dosageInstruction or []:
            bounds = getattr(getattr(getattr(dosage, "timing", None), "repeat", None), "boundsPeriod", None)
            if bounds is not None and bounds.start is not None:
                return _as_date(bounds.start), _as_date(bounds.end)
        validity = getattr(getattr(res, "dispenseRequest", None), "validityPeriod", None)
        if validity is not None and validity.start is not None:
            return _as_date(validity.start), _as_date(validity.end)
        return _as_date(res.authoredOn), None

    # -- procedures

    def procedures(self) -> list[tuple[_dt.date, str, str]]:
        found = []
        for proc in (r for r in self.items if r.get_resource_type() == "Procedure"):
            texts = _texts(proc.code)
            text = " ".join(texts)
            kinds = [TRANSPLANT_CODES[c.code] for c in _codings(proc.code)
                     if c.system == SNOMED and c.code in TRANSPLANT_CODES]
            by_text = bool(_TRANSPLANT_TEXT.search(text))
            if not kinds and not by_text:
                self._note("ignored", "", "Procedure other than a stem-cell transplant", proc, proc.code)
                continue
            if proc.status != "completed":
                self._note("ignored", "lines[].transplant", f"transplant with status {proc.status}: not done", proc,
                           proc.code)
                continue
            kind = next((k for k in kinds if k), None)
            if kind is None:
                if _ALLO_TEXT.search(text):
                    kind = "allogeneic"
                elif _AUTO_TEXT.search(text):
                    kind = "autologous"
            day, _ = _effective(proc)
            if kind is None:
                self._note("warnings", "lines[].transplant", "stem-cell transplant whose kind (autologous or "
                           "allogeneic) neither its code nor its text tells: not imported", proc, proc.code)
                continue
            if day is None:
                self._note("warnings", "lines[].transplant", "transplant without a date: not imported", proc, proc.code)
                continue
            how = "code" if kinds else "name"
            if not any(kinds):
                self._note("inferred", "lines[].transplant", f"{kind} transplant recognised by its text", proc,
                           proc.code)
            found.append((day, kind, _ref(proc), how))
            self.dates.append(day)
        found.sort()
        return [(d, k, s) for d, k, s, _ in found]

    # -- observations

    def observations(self) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = defaultdict(list)
        for ob in (r for r in self.items if r.get_resource_type() == "Observation"):
            if ob.status in ("entered-in-error", "cancelled", "registered"):
                self._note("ignored", "", f"Observation with status {ob.status}", ob, ob.code)
                continue
            day, _ = _effective(ob)
            if day is None:
                day = _as_date(getattr(ob, "issued", None))
            code = ob.code
            if _has_code(code, LOINC, ECOG):
                self._ecog_obs(ob, day, out)
            elif _has_code(code, LOINC, DISEASE_STATUS):
                self._status_obs(ob, day, out)
            elif _has_code(code, LOINC, (SERUM_M, URINE_M_24H, FREE_KAPPA, FREE_LAMBDA, FLC_RATIO)):
                self._lab_obs(ob, day, out)
            elif _has_code(code, LOINC, CREATININE_CLEARANCE):
                value, unit = _number(getattr(ob, "valueQuantity", None))
                if value is None or day is None:
                    self._note("warnings", "creatinineClearance", "creatinine clearance without a value or a date",
                               ob, code)
                    continue
                if unit in ("mL/s", "ml/s"):
                    value *= 60
                elif unit not in ("mL/min", "ml/min", "mL/min/{1.73_m2}", ""):
                    self._note("warnings", "creatinineClearance", f"creatinine clearance in unit {unit!r}: not "
                               "converted, left out", ob, code)
                    continue
                out["crcl"].append((day, value, ob))
            elif _has_code(code, LOINC, GENETIC_VARIANT) or any(_CYTOGENETIC_TEXT.search(t) for t in _texts(code)):
                out["cytogenetics"].append((day, ob))
            elif self._response_value(ob) and any("respons" in t.lower() for t in _texts(code)):
                if day is None:
                    self._note("warnings", "lines[].bestResponse", "response without a date: not placed", ob, code)
                    continue
                out["responses"].append((day, self._response_value(ob), ob))
            else:
                self._note("ignored", "", "Observation not used by the rules", ob, code)
                continue
            if day is not None:
                self.dates.append(day)
        return out

    def _ecog_obs(self, ob: Any, day: Any, out: dict[str, list[Any]]) -> None:
        value = getattr(ob, "valueInteger", None)
        if value is None and getattr(ob, "valueQuantity", None) is not None:
            v, _ = _number(ob.valueQuantity)
            value = int(v) if v is not None else None
        concept = getattr(ob, "valueCodeableConcept", None)
        if value is None and concept is not None:
            for c in _codings(concept):
                if c.code in ECOG_ANSWERS:
                    value = ECOG_ANSWERS[c.code]
                elif c.code and c.code.strip().isdigit():
                    value = int(c.code)
            if value is None:
                m = re.match(r"\s*(?:ECOG\s*)?([0-5])\b", concept.text or "")
                value = int(m.group(1)) if m else None
        if value is None or day is None or not 0 <= int(value) <= 5:
            self._note("warnings", "ecog", "ECOG Observation without a usable value (0-5) or date", ob, ob.code)
            return
        out["ecog"].append((day, int(value), ob))

    def _status_obs(self, ob: Any, day: Any, out: dict[str, list[Any]]) -> None:
        value = getattr(ob, "valueCodeableConcept", None)
        worsened = _has_code(value, SNOMED, WORSENED) or (
            not _codings(value) and any(re.search(r"progress|worsen", t, re.IGNORECASE) for t in _texts(value)))
        if not worsened:
            self._note("ignored", "", f"disease status {_label(value) or '?'}: not a progression", ob, value)
            return
        if day is None:
            self._note("warnings", "lines[].progression", "progression without a date: not used", ob, value)
            return
        evidence: set[str] = set()
        for ext in getattr(ob, "extension", None) or []:
            if ext.url == MCODE_EVIDENCE_TYPE:
                for c in _codings(getattr(ext, "valueCodeableConcept", None)):
                    if c.code == EVIDENCE_LABORATORY:
                        evidence.add("biochemical")
                    elif c.code in EVIDENCE_CLINICAL:
                        evidence.add("clinical")
        out["progressions"].append((day, evidence, _ref(ob)))
        self._note("mapped", "lines[].progression", f"progression on {day}", ob, value)

    def _lab_obs(self, ob: Any, day: Any, out: dict[str, list[Any]]) -> None:
        if day is None:
            self._note("warnings", "labs", "laboratory result without a date: not used", ob, ob.code)
            return
        value, unit = _number(getattr(ob, "valueQuantity", None))
        if _has_code(ob.code, LOINC, FLC_RATIO):
            if value is None and getattr(ob, "valueRatio", None) is not None:
                num, _ = _number(ob.valueRatio.numerator)
                den, _ = _number(ob.valueRatio.denominator)
                value = num / den if num is not None and den else None
            if value is not None:
                out["labs"].append((day, "ratio", value, ob))
            return
        if value is None:
            self._note("warnings", "labs", "laboratory result without a numeric value: not used", ob, ob.code)
            return
        u = unit.replace(" ", "")
        if _has_code(ob.code, LOINC, SERUM_M):
            factor = {"g/dL": 1, "g/dl": 1, "g/L": 0.1, "g/l": 0.1, "mg/dL": 0.001, "mg/dl": 0.001}.get(u)
            name = "mSpike"
        elif _has_code(ob.code, LOINC, URINE_M_24H):
            factor = {"mg/(24.h)": 1, "mg/24h": 1, "mg/24.h": 1, "mg/d": 1, "g/(24.h)": 1000, "g/24h": 1000,
                      "g/d": 1000}.get(u)
            name = "urineM"
        else:
            factor = {"mg/L": 1, "mg/l": 1, "mg/dL": 10, "mg/dl": 10, "ug/mL": 1, "g/L": 1000}.get(u)
            name = "kappa" if _has_code(ob.code, LOINC, FREE_KAPPA) else "lambda"
        if factor is None:
            self._note("warnings", "labs", f"unit {unit!r} not understood for this test: not used", ob, ob.code)
            return
        out["labs"].append((day, name, value * factor, ob))

    @staticmethod
    def _response_value(ob: Any) -> str | None:
        concept = getattr(ob, "valueCodeableConcept", None)
        candidates = [c.code for c in _codings(concept) if c.code] + _texts(concept)
        if getattr(ob, "valueString", None):
            candidates.append(ob.valueString)
        for cand in candidates:
            text = cand.strip()
            for code in RESPONSE_RANK:
                if text.lower() == code.lower():
                    return code
            lowered = text.lower()
            for name, code in _RESPONSE_NAMES:
                if name in lowered:
                    return code
        return None

    # -- assessment date and patient facts

    def assessment_date(self, exposures, transplants, obs, conditions) -> _dt.date:
        given = self.options.assessment_date
        latest = max(self.dates) if self.dates else None
        if given:
            day = given if isinstance(given, _dt.date) else _as_date(given)
            if day is None:
                raise FhirImportError(f"assessment date {given!r} is not a date (YYYY-MM-DD)", source=self.source)
            self._note("mapped", "assessmentDate", f"given as an import option: {day}")
            return day
        stamp = _as_date(self.bundle.timestamp)
        if stamp is not None and (latest is None or stamp >= latest):
            self._note("inferred", "assessmentDate", f"the Bundle's timestamp ({stamp}): pass --assessment-date "
                       "to assess at another date")
            return stamp
        if latest is None:
            raise FhirImportError("no dated fact and no Bundle timestamp: give the assessment date "
                                  "(--assessment-date)", source=self.source)
        why = f"the Bundle's timestamp ({stamp}) is before its latest fact" if stamp else "the Bundle has no timestamp"
        self._note("inferred", "assessmentDate", f"the latest dated fact of the Bundle ({latest}); {why}. "
                   "Pass --assessment-date to assess at another date")
        return latest

    def age(self, patient: Any, assessment: _dt.date, doc: dict[str, Any]) -> None:
        if patient is None:
            self._note("missing", "age", "the Bundle has no Patient resource: age unknown")
            return
        birth = patient.birthDate
        if birth is None:
            self._note("missing", "age", "the Patient has no birthDate: age unknown", patient)
            return
        born = _as_date(birth)
        age = assessment.year - born.year - ((assessment.month, assessment.day) < (born.month, born.day))
        doc["age"] = age
        if isinstance(birth, str):
            self._note("inferred", "age", f"age {age} from the partial birth date {birth} (read as {born}); it may "
                       "be one year too high", patient)
        else:
            self._note("mapped", "age", f"age {age} at {assessment} from birthDate {born}", patient)
        if getattr(patient, "deceasedBoolean", None) or getattr(patient, "deceasedDateTime", None):
            self._note("warnings", "", "the Patient is recorded as deceased", patient)

    def ecog(self, rows, assessment, doc) -> None:
        if not rows:
            return
        day, value, ob = max(rows, key=lambda r: r[0])
        doc["ecog"] = value
        self._note("mapped", "ecog", f"ECOG {value} on {day} (the latest of {len(rows)})", ob, ob.code)

    def creatinine(self, rows, assessment, doc) -> None:
        if not rows:
            return
        day, value, ob = max(rows, key=lambda r: r[0])
        doc["creatinineClearance"] = _clean(value)
        self._note("mapped", "creatinineClearance", f"{_clean(value)} mL/min on {day} (the latest)", ob, ob.code)

    def cytogenetics(self, rows, assessment, doc) -> None:
        if not rows:
            return
        findings: list[str] = []
        tested: _dt.date | None = None
        for day, ob in rows:
            texts = list(_texts(ob.code))
            for comp in getattr(ob, "component", None) or []:
                texts += _texts(getattr(comp, "valueCodeableConcept", None))
                if getattr(comp, "valueString", None):
                    texts.append(comp.valueString)
            value = getattr(ob, "valueCodeableConcept", None)
            value_texts = _texts(value) + ([ob.valueString] if getattr(ob, "valueString", None) else [])
            present: bool | None = None
            if _has_code(value, LOINC, ABSENT) or any(_NEGATIVE.search(t) for t in value_texts):
                present = False
            elif _has_code(value, LOINC, PRESENT) or any(_POSITIVE.search(t) for t in value_texts):
                present = True
            named = [f for f, pat in FINDING_PATTERNS if any(pat.search(t) for t in texts + value_texts)]
            if "amp(1q)" in named and "gain(1q)" in named:
                named.remove("gain(1q)")
            if day is not None:
                tested = max(tested, day) if tested else day
            if present is False:
                self._note("mapped", "cytogenetics", "tested: " + (", ".join(named) + " not found" if named
                           else "no abnormality"), ob, ob.code, text=" / ".join(texts + value_texts) or None)
                continue
            if named:
                for f in named:
                    if f not in findings:
                        findings.append(f)
                self._note("mapped", "cytogenetics.findings", ", ".join(named), ob, ob.code,
                           text=" / ".join(texts + value_texts) or None)
            else:
                self._note("warnings", "cytogenetics.findings", "cytogenetic result names no finding of the patient "
                           "contract (t(11;14), t(4;14), t(14;16), t(14;20), del(17p), gain(1q), amp(1q)): it counts "
                           "as a test, its finding is not imported", ob, ob.code,
                           text=" / ".join(texts + value_texts) or None)
        if tested is None:
            self._note("warnings", "cytogenetics", "cytogenetic results without a date: not imported")
            return
        doc["cytogenetics"] = {"tested": tested.isoformat(), "findings": findings}
        if len(rows) > 1:
            self._note("inferred", "cytogenetics", f"{len(rows)} cytogenetic results: tested = the latest date, "
                       "findings = every finding reported present")

    def labs(self, rows, assessment) -> list[dict[str, Any]]:
        if not rows:
            return []
        by_day: dict[_dt.date, dict[str, float]] = defaultdict(dict)
        for day, name, value, _ob in rows:
            if day > assessment:
                continue
            by_day[day][name] = value
        involved = self.options.involved_light_chain
        if involved not in (None, "kappa", "lambda"):
            raise FhirImportError(f"involved_light_chain must be kappa or lambda, not {involved!r}", source=self.source)
        has_flc = any("kappa" in v or "lambda" in v for v in by_day.values())
        if has_flc and involved is None:
            for day in sorted(by_day):
                v = by_day[day]
                if "ratio" in v:
                    involved = "kappa" if v["ratio"] > 1 else "lambda"
                elif "kappa" in v and "lambda" in v:
                    involved = "kappa" if v["kappa"] > v["lambda"] else "lambda"
                if involved:
                    self._note("inferred", "labs[].iFLC", f"involved light chain: {involved} (the higher chain on "
                               f"{day}); pass involved_light_chain / --involved-light-chain to say otherwise")
                    break
            else:
                self._note("warnings", "labs[].iFLC", "free light chains without both chains on one date: the "
                           "involved chain is unknown, so they are not imported")
        out = []
        for day in sorted(by_day):
            v = by_day[day]
            entry: dict[str, Any] = {"date": day.isoformat()}
            if "mSpike" in v:
                entry["mSpike"] = _clean(v["mSpike"])
            if "urineM" in v:
                entry["urineM"] = _clean(v["urineM"])
            if involved:
                other = "lambda" if involved == "kappa" else "kappa"
                if involved in v:
                    entry["iFLC"] = _clean(v[involved])
                if other in v:
                    entry["uFLC"] = _clean(v[other])
            if len(entry) > 1:
                out.append(entry)
        if out:
            self._note("mapped", "labs", f"{len(out)} dated laboratory result(s) ({out[0]['date']} to {out[-1]['date']})")
        return out

    # -- lines of therapy

    def lines(self, exposures, transplants, progressions, responses, assessment) -> list[dict[str, Any]]:
        rule = self.options.line_rule
        prog_days = sorted({p[0] for p in progressions})
        window = _dt.timedelta(days=rule.window_days)
        groups: list[dict[str, Any]] = []

        def transplant_of(group, day_from, day_to):
            return [t for t in transplants if day_from <= t[0] <= day_to and group["start"] <= t[0]
                    and not any(group["start"] < p <= t[0] for p in prog_days)]

        for exp in exposures:
            cur = groups[-1] if groups else None
            reason = None
            if cur is not None:
                progressed = [p for p in prog_days if cur["start"] < p <= exp.start]
                cond = transplant_of(cur, exp.start, exp.start + _dt.timedelta(days=rule.conditioning_days))
                after = [t for t in transplant_of(cur, cur["start"], exp.start) if t[0] < exp.start]
                if progressed:
                    reason = None
                    why = f"{exp.drug} started on {exp.start}, after the progression of {progressed[0]}"
                elif exp.start - cur["start"] <= window:
                    reason = f"started within {rule.window_days} days of the line's start"
                elif exp.drug in {e.drug for e in cur["exposures"]}:
                    reason = "a drug the line already gives (continuation)"
                elif cond:
                    reason = f"conditioning of the transplant of {cond[0][0]}"
                elif after and exp.start - after[-1][0] <= _dt.timedelta(days=rule.maintenance_days):
                    reason = f"consolidation/maintenance after the transplant of {after[-1][0]}"
                else:
                    why = (f"{exp.drug} is a new drug started on {exp.start}, more than {rule.window_days} days after "
                           f"the line's start ({cur['start']}) and not after a transplant of the line")
            if cur is None or reason is None:
                groups.append({"start": exp.start, "exposures": [exp], "why":
                               "the first drug" if cur is None else why})
            else:
                cur["exposures"].append(exp)
                if "within" not in reason:
                    cur.setdefault("joined", []).append((exp, reason))

        # transplants to lines
        placed: dict[int, tuple[_dt.date, str, str]] = {}
        for t in transplants:
            idx = None
            for i, g in enumerate(groups):
                nxt = groups[i + 1]["start"] if i + 1 < len(groups) else None
                if g["start"] <= t[0] and (nxt is None or t[0] < nxt):
                    idx = i
            if idx is None:
                self._note("warnings", "lines[].transplant", f"transplant of {t[0]} comes before any recognised "
                           "drug: not placed in a line", text=t[1])
                self.report.warnings[-1] = replace(self.report.warnings[-1], source=t[2])
                continue
            if idx in placed:
                self._note("warnings", f"lines[{idx}].transplant", f"second transplant of the line ({t[0]}, tandem?) "
                           f"not representable: the first ({placed[idx][0]}) is kept")
                continue
            placed[idx] = t

        out = []
        for i, g in enumerate(groups):
            number = i + 1
            path = f"lines[{i}]"
            nxt = groups[i + 1]["start"] if i + 1 < len(groups) else None
            t = placed.get(i)
            conditioning: list[_Exposure] = []
            induction: list[_Exposure] = []
            maintenance: list[_Exposure] = []
            for e in g["exposures"]:
                if t and t[0] - _dt.timedelta(days=rule.conditioning_days) <= e.start <= t[0] \
                        and t[1] == "autologous" and e.drug == "melphalan" and e.start > g["start"]:
                    conditioning.append(e)
                elif t and e.start > t[0]:
                    maintenance.append(e)
                else:
                    induction.append(e)
            if not induction:  # a line of maintenance only cannot be: keep its drugs as the line's
                induction, maintenance = maintenance, []
            line: dict[str, Any] = {"number": number}
            items = self._items(induction)
            regimen = self._regimen([it["drug"] for it in items])
            if regimen:
                line["regimen"] = regimen
                self._note("inferred", f"{path}.regimen", f"regimen {regimen}: its components are exactly the "
                           f"line's drugs")
            line["drugs"] = items
            line["start"] = min(e.start for e in induction).isoformat()
            # The line's end is its last dose, maintenance included (the document contract): no end while any
            # of its drugs, maintenance drugs too, is still given or has no recorded end.
            if not any(e.ongoing for e in induction + maintenance) and all(e.end for e in maintenance):
                ends = [e.end for e in induction + maintenance if e.end]
                if ends:
                    line["end"] = max(ends).isoformat()
            progression = next((p for p in prog_days if p > g["start"] and (nxt is None or p <= nxt)), None)
            best = [r for r in responses if r[0] >= g["start"] and (progression is None or r[0] <= progression)
                    and (nxt is None or r[0] < nxt)]
            if best:
                _day, value, ob = max(best, key=lambda r: RESPONSE_RANK[r[1]])
                line["bestResponse"] = value
                self._note("mapped", f"{path}.bestResponse", f"{value} (best of {len(best)} response(s) in the line)",
                           ob, ob.code)
            else:
                self._note("missing", f"{path}.bestResponse", "no IMWG response recorded for the line (primary "
                           "refractoriness, R7, needs it); pass it with line_overrides / --set "
                           f"lines.{number}.bestResponse=VGPR")
            if progression:
                line["progression"] = progression.isoformat()
                everything = induction + maintenance
                on = any(e.ongoing or (e.end and e.end >= progression) for e in everything)
                line["progressionOnTherapy"] = on
                self._note("inferred", f"{path}.progressionOnTherapy",
                           f"{str(on).lower()}: " + ("a drug of the line was still given at the progression of "
                                                     f"{progression}" if on else "every drug of the line had stopped "
                                                     f"before the progression of {progression}"))
                later = [p for p in prog_days if p > progression and (nxt is None or p <= nxt)]
                if later:
                    self._note("ignored", f"{path}.progression", f"later progression(s) in the same line "
                               f"({', '.join(d.isoformat() for d in later)}): the first one is the line's")
            if t:
                line["transplant"] = {"kind": t[1], "date": t[0].isoformat()}
                self._note("mapped", f"{path}.transplant", f"{t[1]} transplant on {t[0]}", text=None)
                self.report.mapped[-1] = replace(self.report.mapped[-1], source=t[2])
            for e in conditioning:
                self._note("inferred", f"{path}.transplant", f"{e.drug} on {e.start} taken as the conditioning of the "
                           "autologous transplant (implied by it, not listed)", text=None)
            if maintenance:
                m_items = self._items(maintenance)
                block: dict[str, Any] = {"drugs": m_items, "start": min(e.start for e in maintenance).isoformat()}
                if not any(e.ongoing for e in maintenance):
                    ends = [e.end for e in maintenance if e.end]
                    if ends:
                        block["end"] = max(ends).isoformat()
                line["maintenance"] = block
            toxic = sorted({e.drug for e in g["exposures"] if e.stopped_for_toxicity})
            line["stoppedForToxicity"] = toxic
            if toxic:
                self._note("inferred", f"{path}.stoppedForToxicity", f"{', '.join(toxic)}: the status reason names "
                           "toxicity or intolerance")
            self._note("inferred", path, f"line {number} from {line['start']}: {g['why']}; drugs "
                       f"{', '.join(it['drug'] for it in items)}"
                       + (f"; maintenance {', '.join(it['drug'] for it in line['maintenance']['drugs'])}"
                          if maintenance else ""))
            joined: dict[tuple[str, str], list[_Exposure]] = {}
            for exp, reason in g.get("joined", []):
                joined.setdefault((exp.drug, reason), []).append(exp)
            for (drug, reason), exps in joined.items():
                self._note("inferred", path, f"{drug} from {exps[0].start}" + (f" ({len(exps)} records)" if
                           len(exps) > 1 else "") + f" kept in line {number}: {reason}", text=None)
                self.report.inferred[-1] = replace(self.report.inferred[-1], source=_sources(exps))
            for phase, exps_ in (("drugs", induction), ("maintenance.drugs", maintenance),
                                 ("transplant (conditioning)", conditioning)):
                by_drug: dict[str, list[_Exposure]] = {}
                for e in exps_:
                    by_drug.setdefault(e.drug, []).append(e)
                for drug, exps in by_drug.items():
                    first, last = min(e.start for e in exps), max((e.end for e in exps if e.end), default=None)
                    hows = ", ".join(sorted({e.how for e in exps}))
                    when = f"from {first}" + (" (ongoing)" if any(e.ongoing for e in exps) else
                                              f" to {last}" if last else " (end unknown)")
                    count = f", {len(exps)} records" if len(exps) > 1 else ""
                    self._note("mapped", f"{path}.{phase}", f"{drug} ({hows}{count}) {when}", text=None)
                    self.report.mapped[-1] = replace(self.report.mapped[-1], source=_sources(exps))
            out.append(line)
        ignored = [p for p in prog_days if not groups or p <= groups[0]["start"]]
        for p in ignored:
            self._note("ignored", "lines[].progression", f"progression on {p} precedes the first line of therapy")
        if not out:
            self._note("missing", "lines", "no treatment the knowledge base knows: the patient has no line of therapy")
        return out

    def _items(self, exposures: list[_Exposure]) -> list[dict[str, Any]]:
        by_drug: dict[str, list[_Exposure]] = {}
        for e in exposures:
            by_drug.setdefault(e.drug, []).append(e)
        items = []
        for drug, group in by_drug.items():
            item: dict[str, Any] = {"drug": drug, "start": min(e.start for e in group).isoformat()}
            if not any(e.ongoing or e.end_unknown for e in group):
                ends = [e.end for e in group if e.end]
                if ends:
                    item["end"] = max(ends).isoformat()
            items.append(item)
        return items

    def _regimen(self, drugs: list[str]) -> str | None:
        wanted = frozenset(drugs)
        hits = [r.id for r in self.kb.regimens() if r.kind not in ("procedure",) and frozenset(r.components) == wanted]
        return hits[0] if len(hits) == 1 else None

    def relapse(self, lines, progressions) -> dict[str, Any] | None:
        if not lines:
            return None
        last = lines[-1]
        if "progression" not in last:
            self._note("missing", "relapse", "no progression after the start of the last line: the Bundle does not "
                       "document a relapse to treat")
            return None
        day = _as_date(last["progression"])
        relapse: dict[str, Any] = {"date": day.isoformat()}
        evidence: set[str] = set()
        sources = []
        for p_day, ev, src in progressions:
            if p_day >= day:
                evidence |= ev
                sources.append(src)
        if "clinical" in evidence:
            relapse["kind"] = "clinical"
        elif "biochemical" in evidence:
            relapse["kind"] = "biochemical"
        if "kind" in relapse:
            self._note("inferred", "relapse.kind", f"{relapse['kind']}: from the evidence type of the disease status "
                       f"({', '.join(sources)})")
        self._note("mapped", "relapse.date", f"the progression of the last line, {day}")
        return relapse

    def missing(self, doc: dict[str, Any]) -> None:
        for key, why in NOT_IN_FHIR.items():
            if key not in doc:
                self._note("missing", key, why + f"; pass it as an import option (--set {key}=...)")
        checks = {
            "age": "no birth date: age unknown",
            "ecog": "no ECOG performance status Observation (LOINC 89247-1)",
            "cytogenetics": "no cytogenetic result (FISH): high-risk lesions and t(11;14) cannot be considered",
            "creatinineClearance": "no creatinine clearance (LOINC 35591-7 or 2164-2): renal dosing cautions "
                                   "cannot be applied",
        }
        for key, why in checks.items():
            if key not in doc and not any(n.field == key for n in self.report.missing):
                self._note("missing", key, why)
        if "plasmaCellLeukemia" not in doc:
            self._note("missing", "plasmaCellLeukemia", "no plasma cell leukaemia Condition (ICD-10 C90.1): left "
                       "unset rather than asserted false; pass --set plasmaCellLeukemia=false when known")
        relapse = doc.get("relapse") or {}
        if doc.get("relapse") is not None:
            if "kind" not in relapse:
                self._note("missing", "relapse.kind", "the disease status carries no evidence type: biochemical or "
                           "clinical relapse unknown; pass --set relapse.kind=clinical|biochemical")
            if "tempo" not in relapse:
                self._note("missing", "relapse.tempo", "relapse tempo (indolent or aggressive) is not in FHIR; pass "
                           "--set relapse.tempo=indolent|aggressive")


def from_fhir(bundle: Any, options: ImportOptions | None = None, **kwargs: Any) -> ImportResult:
    """Import a FHIR R4 (mCODE) Bundle as a patient document.

    :param bundle: a path to a Bundle JSON file, JSON text, a mapping, or a ``fhir.resources`` Bundle.
    :param options: the import choices; keyword arguments of :class:`ImportOptions` may be given instead.
    :returns: the document and the report; ``result.patient_document()`` gives the
        :class:`~myeloma_kg.patient.PatientDocument`.
    :raises NoMyelomaConditionError: when the Bundle has no multiple myeloma Condition.
    :raises FhirBundleError: when the input is not a valid FHIR Bundle.
    :raises FhirImportError: for other input the importer cannot use (several patients, no dates).
    """
    if options is None:
        options = ImportOptions(**kwargs)
    elif kwargs:
        options = replace(options, **kwargs)
    source = str(bundle) if isinstance(bundle, (str, Path)) and not str(bundle).lstrip().startswith("{") else "<fhir>"
    parsed = load_bundle(bundle, source=source)
    return _Importer(parsed, options, source).run()
