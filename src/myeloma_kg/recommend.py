"""Ranked, explained regimen options for patients.

Python orchestrates; the clinical logic is data and queries:

* ``queries/rules`` derive the patient's facts and situations, and an OWL 2 RL reasoner classifies
  the patient (:mod:`myeloma_kg.reason`);
* ``queries/api/recommendations.rq`` selects the guideline recommendations (individuals of
  ``ontology/guidelines.ttl``) whose population the patient belongs to;
* ``queries/api/constraints.rq`` selects the regimen constraints (toxicity, comorbidity,
  refractoriness, biomarker) that cap — or for retreatment raise — an option's strength;
* ``queries/api/advice.rq`` selects warnings, actions and missing-data notices.

Those three select only what depends on the patient (which statements apply to whom, and which options a
constraint hits); what each statement says in a profile (option, strength, rule, message) is knowledge base
only, read once per engine by the ``*-details.rq`` queries (:meth:`Engine.details`).

Combining them is generic: an option's strength is the highest strength any applicable
recommendation gives it, raised by applicable raises when already offered, then capped by the
lowest applicable cap ("the lower strength wins and both reasons are returned", R22).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson
import pyoxigraph as ox

from .catalog import Catalog, default_catalog
from .concurrency import run_all, submit
from .errors import UsageError
from .facts import DerivedFacts, read_facts
from .namespaces import DRUG, PROFILE, local_id
from .patient import PatientDocument, load_patient
from .queries import IRI, api_query, positions, with_values
from .reason import Reasoner, default_reasoner

if TYPE_CHECKING:
    from .validate import ValidationReport

STRENGTH_CODES = {4: "preferred", 3: "alternative", 2: "consider", 1: "not-preferred", 0: "excluded"}
OFFERED_MIN_RANK = 1
RAISE_MIN_RANK = 2

PROFILES = ("default", "s000-belgium-c2019", "s003-2025", "trial-evidence-2026", "eu", "us", "belgian-broad")


@dataclass
class Option:
    """One offered option (``strength`` is preferred, alternative, consider or not-preferred)."""

    regimen: str
    label: str
    strength: str
    rules: list[str]
    because: list[str]
    sources: list[str]
    evidence: list[dict[str, Any]]
    cautions: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    new_drugs: int | None = None
    new_classes: int | None = None
    novel_classes: int | None = None
    status: list[str] = field(default_factory=list)
    jurisdictions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of an option."""
        return {
            "regimen": self.regimen,
            "label": self.label,
            "strength": self.strength,
            "rules": self.rules,
            "because": self.because,
            "sources": self.sources,
            "evidence": self.evidence,
            "cautions": self.cautions,
            "actions": self.actions,
            "newDrugs": self.new_drugs,
            "newClasses": self.new_classes,
            "novelClasses": self.novel_classes,
            "evidenceStatus": self.status,
            "jurisdictions": self.jurisdictions,
        }


@dataclass
class Exclusion:
    """An option that must not be offered, with the rules that exclude it."""

    regimen: str
    label: str
    rules: list[str]
    because: list[str]
    sources: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of an exclusion."""
        return {"regimen": self.regimen, "label": self.label, "rules": self.rules,
                "because": self.because, "sources": self.sources}


@dataclass
class Notice:
    """A warning, an action or a missing-data notice."""

    rule: str
    message: str
    sources: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"rule": ..., "message": ...}`` plus sources and triggering options."""
        data: dict[str, Any] = {"rule": self.rule, "message": self.message, "sources": self.sources}
        if self.options:
            data["options"] = self.options
        return data


@dataclass
class Recommendation:
    """The engine's answer for one patient."""

    patient: str
    profile: str
    situation: list[str]
    options: list[Option]
    excluded: list[Exclusion]
    warnings: list[Notice]
    actions: list[Notice]
    missing: list[Notice]
    facts: DerivedFacts
    disagreements: list[dict[str, Any]] = field(default_factory=list)

    def option(self, regimen: str) -> Option | None:
        """The offered option for a regimen id, if offered."""
        return next((o for o in self.options if o.regimen == regimen), None)

    def strength_of(self, regimen: str) -> str | None:
        """``preferred`` ... ``not-preferred``, ``excluded``, or None when the regimen is not mentioned."""
        opt = self.option(regimen)
        if opt is not None:
            return opt.strength
        if any(e.regimen == regimen for e in self.excluded):
            return "excluded"
        return None

    def to_dict(self) -> dict[str, Any]:
        """The recommendation JSON contract (issue 4), with the derived facts added."""
        return {
            "patient": self.patient,
            "profile": self.profile,
            "situation": self.situation,
            "options": [o.to_dict() for o in self.options],
            "excluded": [e.to_dict() for e in self.excluded],
            "warnings": [w.to_dict() for w in self.warnings],
            "actions": [a.to_dict() for a in self.actions],
            "missing": [m.to_dict() for m in self.missing],
            "disagreements": self.disagreements,
            "facts": self.facts.to_dict(),
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text indented by two spaces, what ``myeloma-kg recommend`` prints.

        orjson writes the text ``json.dumps(..., indent=2, ensure_ascii=False)`` writes for this contract's
        values, ~15x faster (~0.1 ms for a patient's ~80 KB, against ~1.7 ms).
        """
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode("utf-8")


# The columns of the API queries (queries/api) that the engine reads.
_CONSTRAINT_COLUMNS = ("patient", "constraint", "option")
_CONSTRAINT_DETAILS = ("rank", "mode", "fromRank", "lists")  # constraint-details.rq, per constraint
_RECOMMENDATION_COLUMNS = ("patient", "rec")
_RECOMMENDATION_DETAILS = ("option", "rank")  # recommendation-details.rq, per recommendation
_ADVICE_COLUMNS = ("patient", "advice")
_ADVICE_DETAILS = ("kind", "message")  # advice-details.rq, per advice
_ASSESSMENT_COLUMNS = ("patient", "option", "newDrugs", "newClasses", "novelClasses")
_REFRACTORY_COLUMNS = ("patient", "option", "drug")


def profile_iri(name: str) -> str:
    """IRI of a named profile.

    :raises UsageError: for an unknown profile name.
    """
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return str(PROFILE) + name


@dataclass(frozen=True)
class _AdviceText:
    """What an advice statement says, with its citations and its place among a patient's notices."""

    rule: str
    message: str
    sources: tuple[str, ...]
    order: tuple[tuple[int, str], str]


@dataclass(frozen=True)
class _OptionTexts:
    """What an option's deciding statements say, shared by every patient with the same statements."""

    rules: tuple[str, ...]
    because: tuple[str, ...]
    sources: tuple[str, ...]
    evidence: tuple[dict[str, Any], ...]
    status: tuple[str, ...]
    jurisdictions: tuple[str, ...]
    limiting_cautions: tuple[str, ...]
    disagreements: frozenset[str]
    exclusion_rules: tuple[str, ...]
    exclusion_because: tuple[str, ...]
    exclusion_sources: tuple[str, ...]


class Engine:
    """Runs the whole pipeline for batches of patients over one store per batch."""

    def __init__(self, reasoner: Reasoner | None = None, catalog: Catalog | None = None) -> None:
        self.reasoner = reasoner or default_reasoner()
        self.catalog = catalog or default_catalog()
        self._text_cache: dict[tuple[Any, ...], _OptionTexts] = {}
        self._advice_cache: dict[str, _AdviceText] = {}
        self._advice_options: dict[str, tuple[str, ...]] | None = None
        # knowledge-base-only reads, by (query name, profile, key column, columns): statement -> its rows
        self._details: dict[tuple[Any, ...], dict[str, list[tuple[str, ...]]]] = {}
        # an option's refractory-drug cautions by its refractory drug IRIs, and its notice messages
        # (warnings, actions) by its content-triggered advice rows: many patients share them
        self._refractory_cautions: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._notice_messages: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}

    def advice_options(self, store: Any) -> dict[str, tuple[str, ...]]:
        """Content-triggered advice -> the options it concerns, sorted (``queries/api/advice-options.rq``;
        knowledge base only, so read once per engine)."""
        if self._advice_options is None:
            found: dict[str, list[str]] = defaultdict(list)
            solutions = store.query(api_query("advice-options").executable)
            at_advice, at_option = positions(solutions, "advice", "option")
            for solution in solutions:
                advice, option = solution[at_advice], solution[at_option]
                options = found[advice.value]
                if option is not None:
                    options.append(option.value)
            self._advice_options = {a: tuple(sorted(set(o))) for a, o in found.items()}
        return self._advice_options

    def details(self, store: Any, name: str, profile: str, key: str,
                columns: tuple[str, ...]) -> dict[str, list[tuple[str, ...]]]:
        """A knowledge-base-only query's rows by their ``key`` column, the ``columns`` as strings (unbound as
        ""), in the store's order; read once per engine and profile (every store holds the same knowledge
        base)."""
        cache_key = (name, profile, key, columns)
        found = self._details.get(cache_key)
        if found is None:
            solutions = store.query(_bound_query(name, (("profile", (IRI(profile_iri(profile)),)),)))
            at_key, *at = positions(solutions, key, *columns)
            grouped: dict[str, list[tuple[str, ...]]] = defaultdict(list)
            for solution in solutions:
                grouped[solution[at_key].value].append(
                    tuple([term.value if (term := solution[i]) is not None else "" for i in at]))
            found = self._details[cache_key] = dict(grouped)
        return found

    def run(self, documents: Sequence[PatientDocument], profile: str = "default", *,
            keep_store: bool = False) -> tuple[list[Recommendation], ox.Store | None]:
        """Derive and recommend for every document; results come back in input order.

        :param keep_store: also return a private store holding the derived graph (for ``--format ttl``
            and explanations); otherwise the reasoner's shared store is used and cleaned afterwards.
        """
        profile_iri(profile)  # an unknown profile fails here, before any work
        if keep_store:
            store = self.reasoner.new_store()
            added = self.reasoner.add_patients(store, [d.quads for d in documents])
            self.reasoner.derive_added(store, added)
            return self._results(store, documents, profile), store
        with self.reasoner.batch([d.quads for d in documents]) as store:
            return self._results(store, documents, profile), None

    def _results(self, store: ox.Store, documents: Sequence[PatientDocument], profile: str) -> list[Recommendation]:
        rec_details = self.details(store, "recommendation-details", profile, "rec", _RECOMMENDATION_DETAILS)
        advice_details = self.details(store, "advice-details", profile, "advice", _ADVICE_DETAILS)
        constraint_details = self.details(store, "constraint-details", profile, "constraint", _CONSTRAINT_DETAILS)
        reads: list[Callable[[], Any]] = [
            partial(_rows, store, "constraints", {}, _CONSTRAINT_COLUMNS, (constraint_details, _CONSTRAINT_DETAILS)),
            partial(_rows, store, "recommendations", {}, _RECOMMENDATION_COLUMNS,
                    (rec_details, _RECOMMENDATION_DETAILS)),
            partial(_rows, store, "advice", {}, _ADVICE_COLUMNS, (advice_details, _ADVICE_DETAILS)),
            partial(_rows, store, "option-assessments", {}, _ASSESSMENT_COLUMNS),
            partial(_rows, store, "refractory-components", {}, _REFRACTORY_COLUMNS),
            partial(read_facts, store, list(documents)),
        ]
        # The read-only queries overlap on threads only for a few patients and a reasoner asked to be
        # concurrent (see Reasoner's ``concurrent``); a cohort batch's worker processes keep every core busy.
        threaded = (self.reasoner.concurrent and len(documents) < self.reasoner.FRESH_STORE_MIN
                    and isinstance(store, ox.Store))
        constraints, recs, advice, assessments, refractory, facts = (
            run_all(reads) if threaded else [read() for read in reads])
        advice_options = self.advice_options(store)
        return [
            self._assemble(doc, profile, facts[doc.id], recs.get(doc.iri, []), constraints.get(doc.iri, []),
                           advice.get(doc.iri, []), assessments.get(doc.iri, []), refractory.get(doc.iri, []),
                           advice_options)
            for doc in documents
        ]

    # ------------------------------------------------------------ assembly
    def _assemble(self, doc: PatientDocument, profile: str, facts: DerivedFacts, rec_rows: list[dict],
                  constraint_rows: list[dict], advice_rows: list[dict], assessment_rows: list[dict],
                  refractory_rows: list[dict], advice_options: dict[str, tuple[str, ...]]) -> Recommendation:
        cat = self.catalog
        by_option: dict[str, list[dict]] = defaultdict(list)
        for row in rec_rows:
            by_option[row["option"]].append(row)
        caps: dict[str, list[dict]] = defaultdict(list)
        raises: dict[str, list[dict]] = defaultdict(list)
        for row in constraint_rows:
            (caps if row["mode"] == "cap" else raises)[row["option"]].append(row)
        metrics = {row["option"]: row for row in assessment_rows}
        refractory_drugs: dict[str, list[str]] = defaultdict(list)  # drug IRIs by option
        for row in refractory_rows:
            refractory_drugs[row["option"]].append(row["drug"])

        option_notices: dict[str, list[dict]] = defaultdict(list)
        situation_notices: list[dict] = []
        for row in advice_rows:
            concerned = advice_options.get(row["advice"])
            if concerned is None:
                situation_notices.append(row)
            else:  # content-triggered: kept for the options it concerns that are offered
                for option in concerned:
                    option_notices[option].append(row)

        ranked: list[tuple[tuple[Any, ...], Option]] = []  # (sort key, option)
        excluded: list[Exclusion] = []
        disagreements: set[str] = set()
        for option_iri in sorted(set(by_option) | set(caps)):
            info = cat.option(option_iri)
            rows = by_option.get(option_iri, [])
            base = max([int(r["rank"]) for r in rows]) if rows else None
            rank = base
            used_raises = []
            for r in raises.get(option_iri, []):
                from_rank = int(r["fromRank"]) if r.get("fromRank") is not None else RAISE_MIN_RANK
                if base is not None and base >= from_rank:
                    rank = max(rank, int(r["rank"]))
                    used_raises.append(r)  # cited even when the option already had that strength
            cap_rows = caps.get(option_iri, [])
            cap_rank = min([int(r["rank"]) for r in cap_rows]) if cap_rows else None
            if rank is None:
                # Not recommended: listed only when a rule flags it not-preferred or excluded,
                # so that the clinician sees why it is not offered.
                listing = [r for r in cap_rows if int(r["rank"]) == 0 or r.get("lists") == "true"]
                if not listing:
                    continue
                final = min(int(r["rank"]) for r in listing)
                cap_rows = listing
            else:
                final = rank if cap_rank is None else min(rank, cap_rank)
            # Every applicable cap is cited (a cap equal to the strength still explains it).
            texts = self._texts(tuple([r["rec"] for r in rows]), tuple([r["constraint"] for r in used_raises]),
                                tuple([(r["constraint"], int(r["rank"])) for r in cap_rows]), bool(refractory_drugs.get(option_iri)))
            disagreements.update(texts.disagreements)
            if final == 0:
                excluded.append(Exclusion(regimen=info.id, label=info.label, rules=list(texts.exclusion_rules),
                                          because=list(texts.exclusion_because),
                                          sources=list(texts.exclusion_sources)))
                continue
            cautions = list(texts.limiting_cautions)
            refractory = refractory_drugs.get(option_iri)
            if refractory:
                cautions.extend(self._refractory_caution_texts(tuple(refractory)))
            option_warnings, option_actions = self._notice_texts(option_notices.get(option_iri))
            cautions.extend(option_warnings)
            metric = metrics.get(option_iri, {})
            new_drugs, new_classes, novel_classes = (_int(metric.get("newDrugs")), _int(metric.get("newClasses")),
                                                     _int(metric.get("novelClasses")))
            ranked.append(((-final, -(novel_classes or 0), -(new_classes or 0), -(new_drugs or 0),
                            -len(texts.evidence), info.label.lower()), Option(
                regimen=info.id,
                label=info.label,
                strength=STRENGTH_CODES[final],
                rules=list(texts.rules),
                because=list(texts.because),
                sources=list(texts.sources),
                evidence=[dict(e) for e in texts.evidence],
                cautions=_unique(cautions),
                actions=list(option_actions),
                new_drugs=new_drugs,
                new_classes=new_classes,
                novel_classes=novel_classes,
                status=list(texts.status),
                jurisdictions=list(texts.jurisdictions),
            )))
        ranked.sort(key=itemgetter(0))  # stable: options with equal keys keep their IRI order
        options = [option for _, option in ranked]
        excluded.sort(key=lambda e: e.label.lower())

        offered = {o.regimen for o in options}
        notices = self._notices(situation_notices, offered, option_notices)
        warnings, actions, missing = notices["warning"], notices["action"], notices["missing"]
        return Recommendation(
            patient=doc.id,
            profile=profile,
            situation=list(facts.situations),
            options=options,
            excluded=excluded,
            warnings=warnings,
            actions=actions,
            missing=missing,
            facts=facts,
            disagreements=[cat.disagreement(d) for d in sorted(disagreements)],
        )

    def _texts(self, recs: tuple[str, ...], raises: tuple[str, ...], caps: tuple[tuple[str, int], ...],
               refractory: bool) -> _OptionTexts:
        """Rules, reasons, sources and evidence of an option from the statements that decide it.

        Many patients share the same statements for an option, so the result is memoised.
        """
        key = (recs, raises, caps, refractory)
        texts = self._text_cache.get(key)
        if texts is not None:
            return texts
        cat = self.catalog
        statements = [cat.statement(r) for r in recs]
        limiting = [cat.statement(c) for c, _ in caps]
        raising = [cat.statement(c) for c in raises]
        deciding = statements + raising + limiting
        excluding = [cat.statement(c) for c, rank in caps if rank == 0]
        texts = _OptionTexts(
            rules=tuple(_unique([r for st in deciding for r in st.rule_ids] + (["R9"] if refractory else []))),
            because=tuple(_unique(st.text for st in deciding)),
            sources=tuple(_unique(cat.source(x).citation() for st in deciding for x in st.sources)),
            evidence=tuple(cat.trial(t).to_dict() for t in _unique(t for st in statements + raising for t in st.trials)),
            status=tuple(_unique(st.status for st in statements if st.status)),
            jurisdictions=tuple(_unique(j for st in statements for j in st.jurisdictions if j)),
            limiting_cautions=tuple(st.text for st in limiting),
            disagreements=frozenset(d for st in deciding for d in st.disagreements),
            exclusion_rules=tuple(_unique(r for st in excluding for r in st.rule_ids)),
            exclusion_because=tuple(_unique(st.text for st in excluding)),
            exclusion_sources=tuple(_unique(cat.source(x).citation() for st in excluding for x in st.sources)),
        )
        if len(self._text_cache) > 50_000:
            self._text_cache.clear()
        self._text_cache[key] = texts
        return texts

    def _refractory_caution_texts(self, drugs: tuple[str, ...]) -> tuple[str, ...]:
        """The cautions of an option holding these drugs (IRIs) the patient is refractory to, by drug id
        (memoised)."""
        texts = self._refractory_cautions.get(drugs)
        if texts is None:
            cat = self.catalog
            texts = self._refractory_cautions[drugs] = tuple(
                f"Contains {cat.label(str(DRUG) + drug)}, to which the patient is refractory (R9); "
                "it does not count as a new drug (R12)."
                for drug in sorted(local_id(iri, DRUG) for iri in drugs))
        return texts

    def _notice_texts(self, rows: list[dict] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The warning and the action messages (each once, in row order) of an option's content-triggered
        advice rows (memoised)."""
        if not rows:
            return (), ()
        key = tuple([row["advice"] for row in rows])  # an advice's kind and message are its own
        texts = self._notice_messages.get(key)
        if texts is None:
            if len(self._notice_messages) > 50_000:
                self._notice_messages.clear()
            texts = self._notice_messages[key] = (
                tuple(_unique(row["message"] for row in rows if row["kind"] == "warning")),
                tuple(_unique(row["message"] for row in rows if row["kind"] == "action")))
        return texts

    def _advice(self, advice: str) -> _AdviceText:
        """An advice statement's rule, message, citations and place in the notice order (memoised)."""
        text = self._advice_cache.get(advice)
        if text is None:
            cat = self.catalog
            st = cat.statement(advice)
            text = self._advice_cache[advice] = _AdviceText(
                rule=st.rule_id, message=st.text,
                sources=tuple(_unique(cat.source(s).citation() for s in st.sources)),
                order=(_rule_number(st.rule_id), st.text))
        return text

    def _notices(self, situation_rows: list[dict], offered: set[str],
                 option_notices: dict[str, list[dict]]) -> dict[str, list[Notice]]:
        """The warnings, actions and missing-data notices (by kind): the situation-triggered ones, and the
        content-triggered ones of the offered options, each naming those options."""
        merged: dict[str, dict[str, Notice]] = {"warning": {}, "action": {}, "missing": {}}
        for row in situation_rows:
            found = merged[row["kind"]]
            advice = row["advice"]
            if advice not in found:
                text = self._advice(advice)
                found[advice] = Notice(rule=text.rule, message=text.message, sources=list(text.sources))
        # content-triggered advice (never situation-triggered as well) -> its kind and the offered options
        concerned: dict[str, tuple[str, set[str]]] = {}
        option = self.catalog.option
        for option_iri, rows in option_notices.items():
            option_id = option(option_iri).id
            if option_id not in offered:
                continue
            for row in rows:
                entry = concerned.get(row["advice"])
                if entry is None:
                    entry = concerned[row["advice"]] = (row["kind"], set())
                entry[1].add(option_id)
        for advice, (kind, option_ids) in concerned.items():
            text = self._advice(advice)
            merged[kind][advice] = Notice(rule=text.rule, message=text.message, sources=list(text.sources),
                                          options=sorted(option_ids))
        order = self._advice_cache
        return {kind: [by_advice[a] for a in sorted(by_advice, key=lambda a: order[a].order)]
                for kind, by_advice in merged.items()}


@cache
def _bound_query(name: str, bindings: tuple[tuple[str, tuple[object, ...]], ...]) -> str:
    """An API query's executable text with these VALUES bindings (built once per query and bindings)."""
    return with_values(api_query(name).executable, {k: list(v) for k, v in bindings})


def _rows(store: ox.Store, name: str, substitutions: dict[str, list[object]],
          columns: tuple[str, ...],
          details: tuple[dict[str, list[tuple[str, ...]]], tuple[str, ...]] | None = None,
          ) -> dict[str, list[dict[str, str | None]]]:
    """Run an API query and group its rows by patient IRI: the ``columns`` (which include ``patient``) as
    plain strings, None when unbound.

    Only the columns the engine reads are taken from each row: pyoxigraph makes a Python object for every
    value read. The others are functions of these (a statement's rule id, an assessment's fourth count), so
    the rows stay distinct.

    :param details: knowledge-base rows by the value of the query's second column (a statement), with their
        column names (:meth:`Engine.details`): each query row becomes one row per detail row of its
        statement, with those columns added (a statement without details, e.g. outside the profile, gives
        none).
    """
    result = store.query(_bound_query(name, tuple((k, tuple(v)) for k, v in substitutions.items())))
    at = positions(result, *columns)
    patient = columns.index("patient")
    grouped: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    if details is None:
        for solution in result:
            values = tuple([term.value if (term := solution[i]) is not None else "" for i in at])
            grouped[values[patient]].append(values)
    else:
        by_statement, detail_columns = details
        for solution in result:
            values = tuple([term.value if (term := solution[i]) is not None else "" for i in at])
            rows = grouped[values[patient]]
            for extra in by_statement.get(values[1], ()):
                rows.append(values + extra)
        columns = columns + detail_columns
    # Stores return rows in different orders; sorting (by the values in column-name order, unbound as "")
    # keeps output identical across stores.
    order = itemgetter(*sorted(range(len(columns)), key=columns.__getitem__))
    out: dict[str, list[dict[str, str | None]]] = {}
    for key, rows in grouped.items():
        rows.sort(key=order)
        # most rows bind every column: those become dicts without a per-value test
        out[key] = [dict(zip(columns, r)) if "" not in r else {k: (v if v != "" else None) for k, v in zip(columns, r)}
                    for r in rows]
    return out


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: dict[Any, None] = {}
    for item in items:
        if item is not None and item != "":
            seen.setdefault(item, None)
    return list(seen)


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _rule_number(rule: str) -> tuple[int, str]:
    digits = "".join(ch for ch in rule if ch.isdigit())
    return (int(digits) if digits else 999, rule)


_ENGINE: Engine | None = None


def default_engine() -> Engine:
    """A process-wide engine over the packaged knowledge base."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Engine()
    return _ENGINE


def set_default_engine(engine: Engine) -> None:
    """Replace the process-wide engine (for example with one reasoning in a remote store)."""
    global _ENGINE
    _ENGINE = engine


def recommend(patient: Any, profile: str = "default", *, engine: Engine | None = None) -> Recommendation:
    """Recommend options for one patient (a path, a mapping, an rdflib Graph or a PatientDocument).

    Validation is the caller's choice; see :func:`myeloma_kg.validate.validate`.
    """
    doc = load_patient(patient)
    results, _ = (engine or default_engine()).run([doc], profile)
    return results[0]


def recommend_validated(patient: Any, profile: str = "default", *,
                        engine: Engine | None = None) -> tuple[ValidationReport, Recommendation | None]:
    """Validate one patient and recommend for it: the report, and the recommendation when the document
    conforms (None otherwise).

    Validation runs beside the engine: on a helper thread (:mod:`myeloma_kg.concurrency`), and from a
    process's second call on in a helper process (:mod:`myeloma_kg.offload`), where it truly overlaps
    with reasoning, so the pair costs little more than the longer of the two. The report decides: when the
    document does not conform, whatever the engine made of it (even an error) is dropped.

    >>> from myeloma_kg.validate import EXAMPLES_DIR
    >>> report, rec = recommend_validated(EXAMPLES_DIR / "pt-017.yaml")
    >>> report.conforms, rec is not None and rec.patient == report.patient
    (True, True)
    """
    from .validate import validate

    doc = load_patient(patient)
    doc.quads  # noqa: B018 -- built here, not by both threads at once
    pending = _submit_validation(doc)
    if pending is None:  # single-threaded: reason only about a conforming document
        report = validate(doc)
        return report, (engine or default_engine()).run([doc], profile)[0][0] if report.conforms else None
    try:
        rec: Recommendation | None = (engine or default_engine()).run([doc], profile)[0][0]
        failure: Exception | None = None
    except Exception as exc:  # noqa: BLE001 -- re-raised below unless the report rejects the document
        rec, failure = None, exc
    report = pending.result()
    if not report.conforms:
        return report, None
    if failure is not None:
        raise failure
    return report, rec


def _submit_validation(doc: PatientDocument) -> Any:
    """Start validating a document beside the engine: in the helper process once a process asks for
    validated recommendations repeatedly (:mod:`myeloma_kg.offload`), else on a helper thread; None when
    runs are single-threaded."""
    from .offload import helper
    from .validate import validate

    process = helper()
    pending = process.submit(doc) if process is not None else None
    return pending if pending is not None else submit(validate, doc)


def recommend_patient(kb: object, patient: Any, profile: str = "default") -> Recommendation:
    """Entry point behind ``KnowledgeBase.recommend``."""
    return recommend(patient, profile)
