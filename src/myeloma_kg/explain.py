"""Explanations: the chain from patient facts to one regimen's status, and the haematologist's text view."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rdflib import URIRef
from rdflib.namespace import RDF

from .catalog import Catalog, default_catalog
from .errors import UnknownIdentifierError
from .namespaces import MKG, REGIMEN
from .patient import load_patient
from .recommend import Engine, Recommendation, default_engine, profile_iri

_STATEMENTS_FOR_OPTION = """
PREFIX mkg: <https://w3id.org/myeloma-kg/>
SELECT DISTINCT ?stmt ?role ?situation ?minLines ?maxLines ?below ?atLeast ?novelAtLeast WHERE {
  ?stmt mkg:inProfile ?profile .
  # A constraint is about the regimen only when it can act on it: it names the regimen or a class the
  # regimen belongs to, and does not exempt it (the link prepared with the knowledge base).
  { ?stmt mkg:recommends ?option } UNION { ?stmt mkg:constrainedOption ?option }
  OPTIONAL { ?stmt mkg:minPriorLines ?minLines }
  OPTIONAL { ?stmt mkg:maxPriorLines ?maxLines }
  OPTIONAL { ?stmt mkg:whenNewDrugsBelow ?below }
  OPTIONAL { ?stmt mkg:whenNewDrugsAtLeast ?atLeast }
  OPTIONAL { ?stmt mkg:whenNovelClassesAtLeast ?novelAtLeast }
  OPTIONAL { { ?stmt mkg:appliesWhen ?situation . BIND("when" AS ?role) }
             UNION { ?stmt mkg:appliesUnless ?situation . BIND("unless" AS ?role) } }
}
"""

_OPTION_COUNTS = """
PREFIX mkg: <https://w3id.org/myeloma-kg/>
SELECT ?newDrugs ?novel WHERE {
  ?assessment mkg:forPatient ?patient ; mkg:forOption ?option ;
              mkg:newDrugCount ?newDrugs ; mkg:novelClassCount ?novel .
}
"""


@dataclass
class StatementCheck:
    """One recommendation or constraint about the regimen, with each condition and whether it holds."""

    statement: str
    rule: str
    text: str
    applies: bool
    conditions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Explanation:
    """Why a regimen has the status it has for a patient."""

    regimen: str
    label: str
    status: str
    recommendation: Recommendation
    checks: list[StatementCheck]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        opt = self.recommendation.option(self.regimen)
        return {
            "patient": self.recommendation.patient,
            "regimen": self.regimen,
            "label": self.label,
            "status": self.status,
            "situation": self.recommendation.situation,
            "facts": self.recommendation.facts.to_dict(),
            "option": opt.to_dict() if opt else None,
            "exclusion": next((e.to_dict() for e in self.recommendation.excluded if e.regimen == self.regimen), None),
            "statements": [
                {"statement": c.statement.rsplit("/", 1)[-1], "rule": c.rule, "applies": c.applies,
                 "text": c.text, "conditions": c.conditions}
                for c in self.checks
            ],
        }


def explain(patient: Any, regimen: str, profile: str = "default", *, engine: Engine | None = None) -> Explanation:
    """Explain one regimen for one patient: facts, situation, every rule about it and whether it applied.

    :raises UnknownIdentifierError: when ``regimen`` is not a regimen of the knowledge base.
    """
    engine = engine or default_engine()
    cat: Catalog = engine.catalog or default_catalog()
    option_iri = str(REGIMEN) + regimen
    if (URIRef(option_iri), RDF.type, MKG.RelapseTreatmentOption) not in cat.graph:
        from difflib import get_close_matches

        known = sorted(str(s).rsplit("/", 1)[-1] for s in cat.graph.subjects(RDF.type, MKG.RelapseTreatmentOption))
        raise UnknownIdentifierError("regimen", regimen, get_close_matches(regimen.lower(), known, n=3))
    doc = load_patient(patient)
    results, store = engine.run([doc], profile, keep_store=True)
    rec = results[0]
    import pyoxigraph as ox

    from .queries import IRI, with_values

    patient_classes = {t.object.value for t in store.quads_for_pattern(ox.NamedNode(doc.iri), ox.NamedNode(str(RDF.type)), None)}
    lines = rec.facts.prior_line_count
    query = with_values(_STATEMENTS_FOR_OPTION, {"profile": [IRI(profile_iri(profile))], "option": [IRI(option_iri)]})
    counts = with_values(_OPTION_COUNTS, {"patient": [IRI(doc.iri)], "option": [IRI(option_iri)]})
    count_row = next(iter(store.query(counts)), None)
    new_drugs = int(count_row["newDrugs"].value) if count_row is not None else 0
    novel = int(count_row["novel"].value) if count_row is not None else 0
    # the R12 bounds of new-drug constraints, as conditions on this regimen's counts
    bounds: dict[str, tuple[str, Callable[[int], bool], str, int]] = {
        "below": ("new drugs", lambda b: new_drugs < b, "fewer than", new_drugs),
        "atLeast": ("new drugs", lambda b: new_drugs >= b, "at least", new_drugs),
        "novelAtLeast": ("novel classes", lambda b: novel >= b and new_drugs >= b, "at least", novel),
    }
    by_stmt: dict[str, StatementCheck] = {}
    for row in store.query(query):
        stmt = row["stmt"].value
        info = cat.statement(stmt)
        check = by_stmt.setdefault(stmt, StatementCheck(statement=stmt, rule=", ".join(info.rule_ids) or info.rule_id,
                                                        text=info.text, applies=True))
        if row["situation"] is not None:
            sit = row["situation"].value
            holds = sit in patient_classes
            role = row["role"].value
            ok = holds if role == "when" else not holds
            cond = {"role": role, "situation": cat.label(sit), "holds": holds}
            if cond not in check.conditions:
                check.conditions.append(cond)
            check.applies = check.applies and ok
        for key, cmp in (("minLines", lambda n, b: n >= b), ("maxLines", lambda n, b: n <= b)):
            if row[key] is not None:
                bound = int(row[key].value)
                cond = {"role": key, "situation": f"prior lines {lines} vs {bound}", "holds": cmp(lines, bound)}
                if cond not in check.conditions:
                    check.conditions.append(cond)
                check.applies = check.applies and cmp(lines, bound)
        for key, (what, test, phrase, actual) in bounds.items():
            if row[key] is not None:
                bound = int(row[key].value)
                cond = {"role": "bound", "situation": f"{what} {actual}, needs {phrase} {bound} (R12)", "holds": test(bound)}
                if cond not in check.conditions:
                    check.conditions.append(cond)
                check.applies = check.applies and test(bound)
    status = rec.strength_of(regimen) or "not recommended"
    checks = sorted(by_stmt.values(), key=lambda c: (not c.applies, c.rule, c.statement))
    return Explanation(regimen=regimen, label=cat.option(option_iri).label, status=status,
                       recommendation=rec, checks=checks)


# ---------------------------------------------------------------- text rendering

_HEADINGS = (("preferred", "PREFERRED"), ("alternative", "ALTERNATIVE"), ("consider", "CONSIDER"),
             ("not-preferred", "NOT PREFERRED (allowed, flagged)"))


def _evidence_line(ev: dict[str, Any]) -> str:
    parts = []
    for res in ev.get("results", []):
        if "medianMonths" in res:
            parts.append(f"median {res['endpoint'].upper()} {res['arm']} {res['medianMonths']:g} mo")
        elif "hazardRatio" in res:
            parts.append(f"{res['endpoint'].upper()} HR {res['hazardRatio']:g}")
        elif "percent" in res:
            parts.append(f"{res['endpoint'].upper()} {res['arm']} {res['percent']:g}%")
    nct = f" ({', '.join(ev['nctIds'])})" if ev.get("nctIds") else ""
    return f"{ev['label']}{nct}: " + ("; ".join(parts) if parts else "no figure recorded")


def render_text(rec: Recommendation) -> str:
    """The haematologist's view of a recommendation."""
    out: list[str] = []
    f = rec.facts
    out.append(f"Patient {rec.patient} — profile {rec.profile}")
    out.append("Situation: " + (", ".join(rec.situation) or "none derived"))
    facts = [f"{f.prior_line_count} prior line(s)"]
    if f.refractory_to:
        facts.append("refractory to " + ", ".join(f.refractory_to))
    if f.exposed_to:
        facts.append("exposed to " + ", ".join(f.exposed_to))
    if f.months_from_asct_to_progression is not None:
        facts.append(f"ASCT to progression {f.months_from_asct_to_progression} whole months"
                     + (" with maintenance" if f.maintenance_after_asct else " without maintenance"))
    out.append("Facts: " + "; ".join(facts))
    for strength, heading in _HEADINGS:
        opts = [o for o in rec.options if o.strength == strength]
        if not opts:
            continue
        out.append("")
        out.append(heading)
        for o in opts:
            status = f" [{', '.join(o.status)}]" if o.status and o.status != ["current"] else ""
            out.append(f"  {o.label} ({o.regimen}) — {', '.join(o.rules)}{status}")
            for why in o.because:
                out.append(f"      why: {why}")
            for ev in o.evidence:
                out.append(f"      evidence: {_evidence_line(ev)}")
            for c in o.cautions:
                out.append(f"      caution: {c}")
            out.append(f"      sources: {'; '.join(o.sources)}")
    if rec.excluded:
        out.append("")
        out.append("EXCLUDED")
        for e in rec.excluded:
            out.append(f"  {e.label} ({e.regimen}) — {', '.join(e.rules)}")
            for why in e.because:
                out.append(f"      why: {why}")
    for title, notices in (("WARNINGS", rec.warnings), ("ACTIONS", rec.actions), ("MISSING DATA", rec.missing)):
        if notices:
            out.append("")
            out.append(title)
            for n in notices:
                scope = f" (with {', '.join(n.options)})" if n.options else ""
                out.append(f"  [{n.rule}] {n.message}{scope}")
    if rec.disagreements:
        out.append("")
        out.append("WHERE SOURCES DISAGREE")
        for d in rec.disagreements:
            out.append(f"  {d['id']} {d['topic']}")
            for pos in d["positions"]:
                out.append(f"      - {pos}")
    return "\n".join(out) + "\n"


def render_explanation(ex: Explanation) -> str:
    """Text form of :func:`explain`."""
    rec = ex.recommendation
    out = [f"{ex.label} ({ex.regimen}) for patient {rec.patient}: {ex.status.upper()}",
           "Situation: " + ", ".join(rec.situation),
           f"Facts: {rec.facts.prior_line_count} prior line(s); refractory to {', '.join(rec.facts.refractory_to) or 'nothing'}; "
           f"exposed to {', '.join(rec.facts.exposed_to) or 'nothing'}", ""]
    opt = rec.option(ex.regimen)
    if opt:
        out.append(f"New drugs {opt.new_drugs}, new classes {opt.new_classes}, novel classes {opt.novel_classes} (R12)")
    out.append("Rules about this regimen:")
    for c in ex.checks:
        mark = "APPLIES" if c.applies else "does not apply"
        out.append(f"  [{c.rule}] {mark}: {c.text}")
        for cond in c.conditions:
            sign = "yes" if cond["holds"] else "no"
            out.append(f"      {cond['role']}: {cond['situation']} → {sign}")
    if opt:
        out.append("Sources: " + "; ".join(opt.sources))
        for ev in opt.evidence:
            out.append(f"Evidence: {_evidence_line(ev)}")
    return "\n".join(out) + "\n"
