"""Derived facts of a patient: what the rules and the reasoner concluded from the history.

>>> facts = derive_facts({"id": "doc-1", "assessmentDate": "2026-01-10",
...     "lines": [{"number": 1, "drugs": ["lenalidomide", "dexamethasone"], "start": "2024-01-01",
...                "bestResponse": "PR", "progression": "2025-12-01", "progressionOnTherapy": True}]})
>>> facts.prior_line_count, "lenalidomide" in facts.refractory_to
(1, True)
>>> "lenalidomide-refractory" in facts.situations
True
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyoxigraph as ox

from .namespaces import DRUG, local_id
from .patient import PatientDocument, load_patient
from .queries import api_query, positions
from .reason import Reasoner, default_reasoner


@dataclass(frozen=True)
class DerivedFacts:
    """The facts derived for one patient.

    :param patient: the patient id.
    :param situations: situation codes (e.g. ``first-relapse``, ``lenalidomide-refractory``), sorted.
    :param prior_line_count: number of prior lines (R1).
    :param exposed_to: drug ids the patient received (R9).
    :param refractory_to: drug ids the patient is refractory to (R9).
    :param refractory_at_maintenance_dose: drug ids refractory through maintenance (R9).
    :param months_from_asct_to_progression: whole months from the last ASCT to the following progression.
    :param maintenance_after_asct: whether maintenance followed that ASCT.
    """

    patient: str
    situations: tuple[str, ...] = ()
    prior_line_count: int = 0
    exposed_to: tuple[str, ...] = ()
    refractory_to: tuple[str, ...] = ()
    refractory_at_maintenance_dose: tuple[str, ...] = ()
    months_from_asct_to_progression: int | None = None
    maintenance_after_asct: bool | None = None
    situation_labels: dict[str, str] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form using the contract's camelCase names."""
        return {
            "patient": self.patient,
            "situations": list(self.situations),
            "priorLineCount": self.prior_line_count,
            "exposedTo": list(self.exposed_to),
            "refractoryTo": list(self.refractory_to),
            "refractoryAtMaintenanceDose": list(self.refractory_at_maintenance_dose),
            "monthsFromASCTToProgression": self.months_from_asct_to_progression,
            "maintenanceAfterASCT": self.maintenance_after_asct,
        }


def read_facts(store: ox.Store, documents: list[PatientDocument]) -> dict[str, DerivedFacts]:
    """Read the derived facts of every patient from a store where :meth:`Reasoner.derive` ran."""
    by_iri = {doc.iri: doc.id for doc in documents}
    situations: dict[str, set[str]] = defaultdict(set)
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    rows = store.query(api_query("situations").executable)
    at = positions(rows, "patient", "code", "label")
    for row in rows:
        iri, code, label = row[at[0]].value, row[at[1]].value, row[at[2]]
        situations[iri].add(code)
        if label is not None:
            labels[iri][code] = label.value
    values: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    rows = store.query(api_query("patient-facts").executable)
    at = positions(rows, "patient", "fact", "value")
    for row in rows:
        term = row[at[2]]
        value: Any = term.value
        if isinstance(term, ox.NamedNode):
            value = local_id(term.value, DRUG)
        values[row[at[0]].value][row[at[1]].value].append(value)
    out: dict[str, DerivedFacts] = {}
    for iri, pid in by_iri.items():
        v = values.get(iri, {})
        months = v.get("monthsFromASCTToProgression")
        maint = v.get("maintenanceAfterASCT")
        out[pid] = DerivedFacts(
            patient=pid,
            situations=tuple(sorted(situations.get(iri, ()))),
            prior_line_count=int(v.get("priorLineCount", ["0"])[0]),
            exposed_to=tuple(sorted(set(v.get("exposedTo", [])))),
            refractory_to=tuple(sorted(set(v.get("refractoryTo", [])))),
            refractory_at_maintenance_dose=tuple(sorted(set(v.get("refractoryAtMaintenanceDose", [])))),
            months_from_asct_to_progression=int(months[0]) if months else None,
            maintenance_after_asct=(maint[0] == "true") if maint else None,
            situation_labels=dict(labels.get(iri, {})),
        )
    return out


def derive_facts(patient: Any, *, reasoner: Reasoner | None = None) -> DerivedFacts:
    """Derive the facts of one patient (a path, a mapping, an rdflib Graph or a PatientDocument).

    No validation is done here; see :func:`myeloma_kg.validate.validate`.
    """
    doc = load_patient(patient)
    reasoner = reasoner or default_reasoner()
    with reasoner.batch([doc.quads]) as store:
        return read_facts(store, [doc])[doc.id]
