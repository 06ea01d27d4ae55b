"""Build the FHIR R4 (mCODE) test Bundles of ``tests/fhir/`` (run: ``python tests/fhir/build_bundles.py``).

The Bundles are written as JSON next to this script and checked in; this script documents how they were
made and rebuilds them after a change. Codes used (each checked against a published source, see
``myeloma_kg.fhir``): ICD-10-CM C90.00/C90.02/C90.10, SNOMED CT 109989006 (multiple myeloma), 425983008
(autologous PBSC transplant), 271299001 (condition worsened), evidence types 363679005 (imaging),
5880005 (physical examination), 386344002 (laboratory data interpretation); LOINC 89247-1 (ECOG) with
answers LA9622-7.., 97509-4 (cancer disease status), 33358-3, 36916-5, 33944-0 (M-protein, free light
chains), 35591-7 and 2164-2 (creatinine clearance), 69548-6 / 81291-7 (genetic variant, ISCN) with
LA9633-4 / LA9634-2 (present / absent). Drug codes are the knowledge base's own (RxNorm ingredient CUIs,
ATC); names stand alone where a code is deliberately absent or unknown.

V01 and V08 restate ``tests/end_to_end/vignettes/V01`` and ``V08`` (their patient.yaml) as FHIR; facts
FHIR cannot carry (frailty, transplant eligibility ...) are passed as import options by the tests.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
EVIDENCE = "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-evidence-type"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"


def cc(system: str | None = None, code: str | None = None, display: str | None = None, text: str | None = None):
    concept: dict = {}
    if code is not None:
        coding = {"system": system, "code": code}
        if display:
            coding["display"] = display
        concept["coding"] = [coding]
    if text:
        concept["text"] = text
    return concept


class Builder:
    def __init__(self, bundle_id: str, patient_id: str, birth: str, timestamp: str | None) -> None:
        self.patient_id = patient_id
        self.count = 0
        self.bundle = {"resourceType": "Bundle", "id": bundle_id, "type": "collection", "entry": []}
        if timestamp:
            self.bundle["timestamp"] = timestamp
        self.add({"resourceType": "Patient", "id": patient_id, "birthDate": birth,
                  "meta": {"profile": [MCODE + "mcode-cancer-patient"]}})

    @property
    def subject(self):
        return {"reference": f"Patient/{self.patient_id}"}

    def add(self, resource: dict) -> dict:
        if "id" not in resource:
            self.count += 1
            resource["id"] = f"{resource['resourceType'][:4].lower()}-{self.count}"
        self.bundle["entry"].append({"fullUrl": f"urn:uuid:{self.patient_id}-{resource['id']}", "resource": resource})
        return resource

    def condition(self, code: dict, onset: str | None = None) -> None:
        res = {"resourceType": "Condition", "subject": self.subject, "code": code,
               "meta": {"profile": [MCODE + "mcode-primary-cancer-condition"]},
               "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
               "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed")}
        if onset:
            res["onsetDateTime"] = onset
        self.add(res)

    def statement(self, med: dict, start: str, end: str | None = None, status: str = "completed", **extra) -> None:
        period = {"start": start}
        if end:
            period["end"] = end
        self.add({"resourceType": "MedicationStatement", "status": status, "subject": self.subject,
                  "medicationCodeableConcept": med, "effectivePeriod": period, **extra})

    def administration(self, med: dict, day: str, **extra) -> None:
        self.add({"resourceType": "MedicationAdministration", "status": "completed", "subject": self.subject,
                  "medicationCodeableConcept": med, "effectiveDateTime": day, **extra})

    def request(self, med: dict, start: str, end: str | None = None, status: str = "completed", **extra) -> None:
        bounds = {"start": start}
        if end:
            bounds["end"] = end
        self.add({"resourceType": "MedicationRequest", "status": status, "intent": "order", "subject": self.subject,
                  "authoredOn": start, "medicationCodeableConcept": med,
                  "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": bounds}}}], **extra})

    def transplant(self, day: str, code: dict) -> None:
        self.add({"resourceType": "Procedure", "status": "completed", "subject": self.subject, "code": code,
                  "performedDateTime": day})

    def observation(self, code: dict, day: str, **value) -> dict:
        return self.add({"resourceType": "Observation", "status": "final", "subject": self.subject, "code": code,
                         "effectiveDateTime": day, **value})

    def ecog(self, day: str, score: int) -> None:
        answers = ["LA9622-7", "LA9623-5", "LA9624-3", "LA9625-0", "LA9626-8", "LA9627-6"]
        self.observation(cc(LOINC, "89247-1", "ECOG Performance Status score"), day,
                         valueCodeableConcept=cc(LOINC, answers[score], text=f"ECOG {score}"))

    def progression(self, day: str, *evidence: tuple[str, str]) -> None:
        ob = self.observation(cc(LOINC, "97509-4", "Cancer disease progression"), day,
                              valueCodeableConcept=cc(SNOMED, "271299001", "Patient's condition worsened (finding)"))
        ob["meta"] = {"profile": [MCODE + "mcode-cancer-disease-status"]}
        if evidence:
            ob["extension"] = [{"url": EVIDENCE, "valueCodeableConcept": cc(SNOMED, code, display)}
                               for code, display in evidence]

    def response(self, day: str, category: str, text: str) -> None:
        self.observation(cc(text="IMWG best response to treatment"), day,
                         valueCodeableConcept=cc(text=f"{category} ({text})"))

    def crcl(self, day: str, value: float, code: str = "35591-7", unit: str = "mL/min") -> None:
        self.observation(cc(LOINC, code, "Creatinine renal clearance"), day,
                         valueQuantity={"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                                        "code": unit})

    def lab(self, code: str, day: str, value: float, unit: str) -> None:
        self.observation(cc(LOINC, code), day, valueQuantity={"value": value, "unit": unit,
                                                               "system": "http://unitsofmeasure.org", "code": unit})

    def write(self, name: str) -> Path:
        path = HERE / name
        path.write_text(json.dumps(self.bundle, indent=1) + "\n", encoding="utf-8")
        return path


# Drugs as coded in the knowledge base (RxNorm ingredient CUIs and ATC codes of ontology/drugs.ttl).
BORTEZOMIB = cc(RXNORM, "358258", "bortezomib")
LENALIDOMIDE = cc(RXNORM, "342369", "lenalidomide")
MELPHALAN = cc(RXNORM, "6718", "melphalan")
CYCLOPHOSPHAMIDE = cc(RXNORM, "3002", "cyclophosphamide")
CARFILZOMIB = cc(RXNORM, "1302966", "carfilzomib")
DEX_ATC = cc(ATC, "H02AB02", "dexamethasone")
DARA_ATC = cc(ATC, "L01FC01", "daratumumab")
ASCT = cc(SNOMED, "425983008", "Autologous peripheral blood stem cell transplant")
IMAGING = ("363679005", "Imaging (procedure)")
EXAM = ("5880005", "Physical examination procedure (procedure)")
LAB = ("386344002", "Laboratory data interpretation (procedure)")


def v01() -> Builder:
    """V01: progression on lenalidomide maintenance 30 months after ASCT (see the vignette's patient.yaml)."""
    b = Builder("bundle-v01", "v01", "1964-05-20", "2025-11-03T09:00:00Z")
    b.condition(cc(ICD10CM, "C90.00", "Multiple myeloma not having achieved remission"), "2022-11-15")
    # VRd x4 (21-day cycles) from 2022-12-01; last bortezomib C4D11, last dexamethasone C4D12, lenalidomide C4D14
    b.statement(BORTEZOMIB, "2022-12-01", "2023-02-12")
    b.statement(LENALIDOMIDE, "2022-12-01", "2023-02-15")
    b.statement(DEX_ATC, "2022-12-01", "2023-02-13")
    b.administration(MELPHALAN, "2023-04-10")  # high-dose conditioning
    b.transplant("2023-04-12", ASCT)
    b.response("2023-06-20", "VGPR", "very good partial response")
    b.statement(LENALIDOMIDE, "2023-07-10", status="active")  # maintenance, ongoing
    b.progression("2025-10-12", IMAGING)  # new lytic lesion
    b.ecog("2025-10-20", 1)
    b.crcl("2025-10-20", 85)
    b.observation(cc(text="Plasma cell FISH panel (bone marrow, CD138-selected)"), "2025-10-20",
                  valueCodeableConcept=cc(text="No abnormality detected"))
    return b


def v08() -> Builder:
    """V08: refractory to lenalidomide and bortezomib, anti-CD38-naive (see the vignette's patient.yaml)."""
    b = Builder("bundle-v08", "v08", "1958-03-14", "2025-08-25T09:00:00Z")
    b.condition(cc(SNOMED, "109989006", "Multiple myeloma (disorder)"), "2022-04-20")
    # line 1: Rd continuous from 2022-05-02 until progression on Rd at month 30
    b.statement(LENALIDOMIDE, "2022-05-02", "2024-11-02")
    b.statement(cc(text="Dexamethasone 40 mg tablet"), "2022-05-02", "2024-11-02")
    b.response("2023-01-10", "VGPR", "very good partial response")
    b.progression("2024-11-02", IMAGING)
    # line 2: VCd, 28-day cycles, bortezomib and cyclophosphamide weekly, 8 cycles: last dose C8D22 = 2025-06-23
    start = dt.date(2024, 11, 18)
    for week in range(32):
        b.administration(BORTEZOMIB, (start + dt.timedelta(days=7 * week)).isoformat())
    b.request(CYCLOPHOSPHAMIDE, "2024-11-18", "2025-06-23")
    b.statement(DEX_ATC, "2024-11-18", "2025-06-23")
    b.response("2025-03-01", "PR", "partial response")
    b.progression("2025-08-02", EXAM, LAB)
    b.ecog("2025-08-11", 1)
    b.crcl("2025-08-11", 78)
    variant = b.observation(cc(LOINC, "69548-6", "Genetic variant assessment"), "2025-08-11",
                            valueCodeableConcept=cc(LOINC, "LA9634-2", "Absent"))
    variant["component"] = [{"code": cc(LOINC, "81291-7", "Variant ISCN"),
                             "valueCodeableConcept": cc(text="t(4;14)(p16;q32)")}]
    return b


def mappings() -> Builder:
    """Every mapping at least once: codes and names, the three medication resources, labs with unit
    conversion, ECOG, creatinine clearance in mL/s, cytogenetics present and absent, responses,
    toxicity stop, a transplant, biochemical then clinical progression, an unknown drug and ignored resources."""
    b = Builder("bundle-map", "fhir-map", "1958-07-01", "2026-03-01T08:00:00Z")
    b.condition(cc(ICD10CM, "C90.02", "Multiple myeloma in relapse"), "2020-12-10")
    b.condition(cc(SNOMED, "38341003", "Hypertensive disorder"))  # ignored
    # line 1: VRd -> ASCT -> lenalidomide maintenance stopped for toxicity
    med = b.add({"resourceType": "Medication", "id": "med-bortezomib", "code": BORTEZOMIB})
    b.add({"resourceType": "MedicationStatement", "status": "completed", "subject": b.subject,
           "medicationReference": {"reference": f"Medication/{med['id']}"},
           "effectivePeriod": {"start": "2021-02-01", "end": "2021-05-20"}})
    b.request(cc(RXNORM, "0000001", text="Lenalidomide 25 MG Oral Capsule"), "2021-02-01", "2021-05-20")
    b.add({"resourceType": "MedicationStatement", "status": "completed", "subject": b.subject,
           "contained": [{"resourceType": "Medication", "id": "dex", "code": DEX_ATC}],
           "medicationReference": {"reference": "#dex"},
           "effectivePeriod": {"start": "2021-02-08", "end": "2021-05-20"}})
    b.transplant("2021-07-01", ASCT)
    b.response("2021-10-01", "CR", "complete response")
    b.statement(LENALIDOMIDE, "2021-09-01", "2023-01-15", status="stopped",
                statusReason=[cc(text="Toxicity: grade 4 neutropenia")])
    b.statement(cc(RXNORM, "1191", "aspirin", text="Aspirin 100 mg"), "2021-09-01", "2023-01-15")  # unknown drug
    b.statement(cc(text="Bortezomib"), "2021-03-01", "2021-03-02", status="entered-in-error")  # ignored
    b.progression("2023-09-01", LAB)
    # line 2: DKd, daratumumab administrations coded by ATC only, carfilzomib ongoing
    for day in ("2023-09-15", "2023-09-22", "2023-09-29", "2023-10-06", "2023-11-03"):
        b.administration(DARA_ATC, day)
    b.statement(CARFILZOMIB, "2023-09-15", status="active")
    b.statement(cc(text="Dexamethasone 20 mg"), "2023-09-15", status="active")
    b.response("2024-01-10", "VGPR", "very good partial response")
    b.progression("2026-01-20", LAB)
    b.progression("2026-02-01", IMAGING)
    # labs: M-protein in g/L, kappa in mg/dL, lambda in mg/L
    for day, m, kappa, lam in (("2025-11-01", 5, 8.0, 9.0), ("2026-01-15", 12, 25.0, 8.5)):
        b.lab("33358-3", day, m, "g/L")
        b.lab("36916-5", day, kappa, "mg/dL")
        b.lab("33944-0", day, lam, "mg/L")
    b.ecog("2024-01-10", 1)
    b.ecog("2026-02-10", 2)
    b.crcl("2026-02-10", 1.0, code="2164-2", unit="mL/s")
    variant = b.observation(cc(LOINC, "69548-6", "Genetic variant assessment"), "2026-02-10",
                            valueCodeableConcept=cc(LOINC, "LA9633-4", "Present"))
    variant["component"] = [{"code": cc(LOINC, "81291-7", "Variant ISCN"),
                             "valueCodeableConcept": cc(text="t(4;14)(p16;q32)")}]
    b.observation(cc(text="FISH 17p13 (TP53) deletion"), "2026-02-10", valueCodeableConcept=cc(text="Negative"))
    b.observation(cc(text="FISH 1q21 (CKS1B)"), "2026-02-10", valueString="1q21 gain in 32% of nuclei")
    b.observation(cc(LOINC, "29463-7", "Body weight"), "2026-02-10",
                  valueQuantity={"value": 72, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"})
    return b


def lines() -> Builder:
    """Line grouping: window, conditioning, maintenance, a new drug without progression, progression."""
    b = Builder("bundle-lines", "fhir-lines", "1960-01-01", None)  # no timestamp: latest fact is the date
    b.condition(cc(ICD10CM, "C90.00"))
    b.statement(BORTEZOMIB, "2020-01-01", "2020-04-20")
    b.statement(LENALIDOMIDE, "2020-01-01", "2020-04-20")
    b.statement(DEX_ATC, "2020-01-15", "2020-04-20")  # 14 days after the line's start
    b.administration(MELPHALAN, "2020-05-30")  # conditioning
    b.transplant("2020-06-01", ASCT)
    b.statement(LENALIDOMIDE, "2020-07-15", "2021-02-20")  # maintenance (a drug of the line)
    b.statement(cc(ATC, "L01FC01", text="Daratumumab SC"), "2021-03-01", "2021-12-20")  # new drug, no progression
    b.progression("2022-01-02", EXAM)
    b.statement(CARFILZOMIB, "2022-01-20", "2022-09-30")
    b.statement(DEX_ATC, "2022-01-20", "2022-09-30")
    b.progression("2022-11-15", LAB)
    return b


def unknown_drug() -> Builder:
    """One line whose drugs include one no knowledge-base drug matches by code or name."""
    b = Builder("bundle-unknown", "fhir-unknown", "1955-02-02", "2024-06-01T00:00:00Z")
    b.condition(cc(ICD10CM, "C90.00"))
    b.statement(LENALIDOMIDE, "2023-01-01", "2024-04-01")
    b.statement(DEX_ATC, "2023-01-01", "2024-04-01")
    b.statement(cc(RXNORM, "0000002", text="Investigational agent XYZ-123"), "2023-01-01", "2024-04-01")
    b.progression("2024-05-01", LAB)
    return b


def no_myeloma() -> Builder:
    """A breast cancer patient: no multiple myeloma Condition."""
    b = Builder("bundle-breast", "fhir-breast", "1970-01-01", "2024-01-01T00:00:00Z")
    b.condition(cc(SNOMED, "254837009", "Malignant neoplasm of breast (disorder)"))
    b.statement(cc(text="Anastrozole 1 mg"), "2023-01-01", status="active")
    return b


BUNDLES = {
    "v01.json": v01,
    "v08.json": v08,
    "mappings.json": mappings,
    "lines.json": lines,
    "unknown-drug.json": unknown_drug,
    "no-myeloma.json": no_myeloma,
}


def main() -> None:
    for name, build in BUNDLES.items():
        print(build().write(name))


if __name__ == "__main__":
    main()
