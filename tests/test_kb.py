"""The knowledge base: content against the clinical reference, typed lookups, statistics, export, CLI."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF, XSD

from myeloma_kg.cli import main
from myeloma_kg.errors import DataError, KnowledgeBaseError, UnknownIdentifierError
from myeloma_kg.kb import Drug, KnowledgeBase, Regimen, Trial, load_kb_graph
from myeloma_kg.namespaces import MKG, REGIMEN, SOURCE, TRIAL
from myeloma_kg.resources import ontology_dir

REPO = Path(__file__).resolve().parents[1]
CLINICAL = REPO.parent / "shared" / "clinical"
ONTOLOGY_BASE = "https://w3id.org/myeloma-kg/ontology"
PARTS = ("core", "parameters", "drugs", "regimens", "trials", "sources", "guidelines")
FRONT_LINE = {
    "vrd": ({"bortezomib", "lenalidomide", "dexamethasone"}, "triplet"),
    "vtd": ({"bortezomib", "thalidomide", "dexamethasone"}, "triplet"),
    "vmp": ({"bortezomib", "melphalan", "prednisone"}, "triplet"),
    "d_vmp": ({"daratumumab", "bortezomib", "melphalan", "prednisone"}, "quadruplet"),
    "d_vrd": ({"daratumumab", "bortezomib", "lenalidomide", "dexamethasone"}, "quadruplet"),
    "d_vtd": ({"daratumumab", "bortezomib", "thalidomide", "dexamethasone"}, "quadruplet"),
    "len_maintenance": ({"lenalidomide"}, "monotherapy"),
}
RESULT_COLUMNS = {
    "median_pfs_exp_months": ("pfs", "experimental", "median_months"),
    "median_pfs_ctrl_months": ("pfs", "control", "median_months"),
    "pfs_hazard_ratio": ("pfs", "comparison", "hazard_ratio"),
    "median_os_exp_months": ("os", "experimental", "median_months"),
    "median_os_ctrl_months": ("os", "control", "median_months"),
    "os_hazard_ratio": ("os", "comparison", "hazard_ratio"),
    "orr_exp": ("orr", "experimental", "percent"),
    "orr_ctrl": ("orr", "control", "percent"),
}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def reference(name: str) -> list[dict[str, str]]:
    path = CLINICAL / name
    if not path.is_file():
        pytest.skip(f"clinical reference {path} not present beside the repository")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def split(cell: str, sep: str = ";") -> set[str]:
    return {c.strip() for c in cell.split(sep) if c.strip()}


# ---------------------------------------------------------------- counts

def test_counts(kb: KnowledgeBase) -> None:
    assert len(kb.drugs()) == 30
    assert len(kb.regimens()) == 46 + len(FRONT_LINE)
    assert len(kb.trials()) == 31
    assert sum(len(t.results) for t in kb.trials()) == 146


def test_counts_match_reference(kb: KnowledgeBase) -> None:
    drugs, regimens, trials = reference("drugs.csv"), reference("regimens.csv"), reference("trials.csv")
    assert set(kb.drug_ids()) == {d["id"] for d in drugs}
    assert set(kb.regimen_ids()) == {r["id"] for r in regimens} | set(FRONT_LINE)
    assert set(kb.trial_ids()) == {t["id"] for t in trials}
    figures = sum(1 for t in trials for col in RESULT_COLUMNS if t[col].strip())
    assert sum(len(t.results) for t in kb.trials()) == figures


# ---------------------------------------------------------------- drugs

def test_drugs_match_reference(kb: KnowledgeBase) -> None:
    for row in reference("drugs.csv"):
        drug = kb.drug(row["id"])
        assert drug.drug_class == row["drug_class"], row["id"]
        assert drug.drug_class in drug.classes
        assert set(drug.routes) == split(row["route"])
        assert drug.atc_code == (row["atc_code"] or None), row["id"]
        assert drug.chebi_id == (row["chebi_id"] or None), row["id"]
        assert drug.ncit_code == (row["ncit_code"] or None), row["id"]
        assert drug.rxnorm_cui == (row["rxnorm_cui"] or None), row["id"]
        assert drug.toxicities and drug.cautions


def test_empty_identifier_cells_stay_absent(kb: KnowledgeBase) -> None:
    assert kb.drug("linvoseltamab").atc_code is None
    assert kb.drug("cevostamab").atc_code is None
    assert kb.drug("dexamethasone").rxnorm_cui is None
    assert kb.drug("bortezomib").ncit_code == "C1851"
    assert [d.id for d in kb.drugs() if d.ncit_code] == ["bortezomib"]
    assert sorted(d.id for d in kb.drugs() if d.chebi_id) == ["bortezomib", "lenalidomide", "thalidomide"]
    assert sum(1 for d in kb.drugs() if d.rxnorm_cui) == 16


def test_drug_classes_include_superclasses(kb: KnowledgeBase) -> None:
    bela = kb.drug("belantamab_mafodotin")
    assert bela.drug_class == "antibody_drug_conjugate"
    assert "bcma_directed_therapy" in bela.classes
    cilta = kb.drug("ciltacabtagene_autoleucel")
    assert {"bcma_car_t", "bcma_directed_therapy", "t_cell_redirecting_therapy"} <= set(cilta.classes)
    assert "not_counted_as_new_drug" in kb.drug("dexamethasone").classes
    assert kb.drug("daratumumab").routes == ("iv", "sc")


def test_toxicities_split_per_item(kb: KnowledgeBase) -> None:
    len_tox = kb.drug("lenalidomide").toxicities
    assert "myelosuppression (neutropenia;thrombocytopenia)" in len_tox  # a ';' inside brackets is one item
    assert "venous thromboembolism" in len_tox and len(len_tox) == 7


# ---------------------------------------------------------------- regimens

def test_regimens_match_reference(kb: KnowledgeBase) -> None:
    for row in reference("regimens.csv"):
        reg = kb.regimen(row["id"])
        assert set(reg.components) == split(row["components"]), row["id"]
        assert reg.backbone == (None if row["backbone"] == "none" else row["backbone"]), row["id"]
        assert reg.all_oral is (row["all_oral"] == "true"), row["id"]
        assert reg.kind == row["doublet_triplet_quadruplet"], row["id"]
        assert set(reg.settings) == split(row["typical_setting"]), row["id"]
        assert row["label"] in reg.alt_labels or row["label"] == reg.label


def test_regimen_labels(kb: KnowledgeBase) -> None:
    assert kb.regimen("dvd").label == "DVd"
    ird = kb.regimen("ird")
    assert ird.label == "IRd" and "NRd" in ird.alt_labels
    assert kb.regimen("pd").label == "Pd" and "Pom-dex" in kb.regimen("pd").alt_labels


def test_procedures_are_not_regimens(kb: KnowledgeBase) -> None:
    for rid in ("salvage_asct", "allo_sct"):
        node = REGIMEN[rid]
        assert (node, RDF.type, MKG.Procedure) in kb.graph
        assert (node, RDF.type, MKG.Regimen) not in kb.inferred
        assert kb.regimen(rid).kind == "procedure"
    assert kb.regimen("allo_sct").components == ()


def test_infusional_chemotherapy(kb: KnowledgeBase) -> None:
    infusional = {s for s in kb.inferred.subjects(RDF.type, MKG.InfusionalChemotherapy)}
    assert infusional == {REGIMEN.dcep, REGIMEN.dt_pace, REGIMEN.vdt_pace}


def test_front_line_regimens(kb: KnowledgeBase) -> None:
    for rid, (components, kind) in FRONT_LINE.items():
        reg = kb.regimen(rid)
        assert set(reg.components) == components and reg.kind == kind and reg.front_line, rid
    assert kb.regimen("len_maintenance").all_oral
    for rid in ("vcd", "drd", "rd"):
        reg = kb.regimen(rid)
        assert reg.front_line and reg.settings, rid  # front-line, and still a relapse regimen
    assert not kb.regimen("krd").front_line
    assert not kb.regimen("dvd").front_line


def test_defined_classes_in_closure(kb: KnowledgeBase) -> None:
    assert (REGIMEN.drd, RDF.type, MKG.LenalidomideContainingOption) in kb.inferred
    assert (REGIMEN.drd, RDF.type, MKG.RdBasedTriplet) in kb.inferred
    assert (REGIMEN.vrd, RDF.type, MKG.RdBasedTriplet) not in kb.inferred  # front-line, no backbone
    assert kb.store.query(
        "ASK { <https://w3id.org/myeloma-kg/regimen/dvd> a <https://w3id.org/myeloma-kg/BortezomibContainingOption> }"
    )


# ---------------------------------------------------------------- trials

def test_trials_match_reference(kb: KnowledgeBase) -> None:
    for row in reference("trials.csv"):
        trial = kb.trial(row["id"])
        assert trial.label == row["name"]
        assert set(trial.nct_ids) == set(re.findall(r"NCT[0-9]{8}", row["nct_id"])), row["id"]
        assert trial.n == (int(row["n_randomized"]) if row["n_randomized"] else None), row["id"]
        assert trial.experimental == row["experimental_regimen"]
        assert set(trial.controls) == split(row["control_regimen"], "|")
        assert trial.reference == row["key_reference"]
        expected = {
            (ep, role, field, Decimal(row[col]))
            for col, (ep, role, field) in RESULT_COLUMNS.items() if row[col].strip()
        }
        found = set()
        for result in trial.results:
            values = {f: getattr(result, f) for f in ("median_months", "hazard_ratio", "percent")}
            (field, value), = [(f, v) for f, v in values.items() if v is not None]
            found.add((result.endpoint, result.arm_role, field, value))
            assert result.source == f"{row['key_reference']} (clinical reference trials.csv)"
        assert found == expected, row["id"]


def result(trial: Trial, endpoint: str, role: str) -> Decimal | None:
    for r in trial.results:
        if (r.endpoint, r.arm_role) == (endpoint, role):
            return r.median_months if r.median_months is not None else r.hazard_ratio if r.hazard_ratio is not None else r.percent
    return None


def test_exact_figures(kb: KnowledgeBase) -> None:
    optimismm = kb.trial("optimismm")
    assert str(result(optimismm, "pfs", "experimental")) == "11.20"  # trailing zero kept
    assert str(result(optimismm, "pfs", "control")) == "7.10"
    pollux = kb.trial("pollux")
    assert result(pollux, "pfs", "experimental") == Decimal("44.5")
    assert result(pollux, "pfs", "comparison") == Decimal("0.44")
    assert result(kb.trial("castor"), "os", "comparison") == Decimal("0.74")
    assert str(result(kb.trial("icaria_mm"), "os", "comparison")) == "0.776"
    assert str(result(kb.trial("apex"), "orr", "experimental")) == "38"
    assert kb.trial("castor").n == 498


def test_empty_trial_cells_stay_absent(kb: KnowledgeBase) -> None:
    assert not list(kb.graph.objects(TRIAL.storm, MKG.nctId))
    assert kb.trial("storm").nct_ids == ()
    assert kb.trial("mm_009").nct_ids == () and kb.trial("mm_009").n is None
    assert kb.trial("mm_009").results == ()
    assert result(kb.trial("cartitude_4"), "pfs", "experimental") is None
    assert result(kb.trial("cartitude_4"), "pfs", "control") == Decimal("11.8")
    assert result(kb.trial("dreamm_8"), "pfs", "experimental") is None
    assert kb.trial("majestec_1").controls == () and kb.trial("majestec_1").n is None
    assert (TRIAL["cartitude_4-pfs-experimental"], None, None) not in kb.graph


def test_split_nct_ids(kb: KnowledgeBase) -> None:
    assert kb.trial("monumental_1").nct_ids == ("NCT03399799", "NCT04634552")
    assert kb.trial("karmma_3").controls == ("dpd", "dvd", "epd", "ird", "kd")


def test_figures_are_typed_decimals(kb: KnowledgeBase) -> None:
    for prop in (MKG.medianMonths, MKG.hazardRatio, MKG.percent):
        for value in kb.graph.objects(None, prop):
            assert isinstance(value, Literal) and value.datatype == XSD.decimal, value


# ---------------------------------------------------------------- sources, rules, disagreements

def test_sources(kb: KnowledgeBase) -> None:
    g = kb.graph
    assert not list(g.objects(SOURCE.S000, MKG.sourceDate))
    assert "2018-2019" in str(g.value(SOURCE.S000, MKG.dateNote))
    assert (SOURCE.S000, MKG.jurisdiction, MKG.Belgium) in g
    assert "seeds/000_41f30612593c8062.txt" in str(g.value(SOURCE.S000, MKG.sourceNote))
    date = g.value(SOURCE.S003, MKG.sourceDate)
    assert date == Literal("2025-08-16T00:00:00", datatype=XSD.dateTime)
    for sid in ("IMWG-resp", "IMWG-2011", "CUR", "TRIALS", "EMN-SIIA-2019", "GERRIE-2013", "IMWG-2021-PCL", "REGULATORY"):
        assert (SOURCE[sid], RDF.type, MKG.Source) in kb.inferred, sid
    profiles = {str(p).rsplit("/", 1)[1] for p in kb.inferred.subjects(RDF.type, MKG.Profile)}
    assert {"default", "s000-belgium-c2019", "s003-2025", "trial-evidence-2026"} <= profiles


def test_no_xsd_date_in_ontology(kb: KnowledgeBase) -> None:
    assert not [t for t in kb.graph if isinstance(t[2], Literal) and t[2].datatype == XSD.date]
    assert not [t for t in kb.graph if t[2] == XSD.date]


def test_rule_catalogue(kb: KnowledgeBase) -> None:
    rules = {str(r): r for r in kb.graph.subjects(RDF.type, MKG.ClinicalRule)}
    assert len(rules) == 58
    rule = "https://w3id.org/myeloma-kg/rule/"
    for i in range(1, 59):
        node = URIRef(f"{rule}R{i}")
        assert str(kb.graph.value(node, MKG.ruleId)) == f"R{i}"
        assert list(kb.graph.objects(node, MKG.source)), f"R{i}"
    status = {i: kb.graph.value(URIRef(f"{rule}R{i}"), MKG.evidenceStatus) for i in range(1, 59)}
    assert status[44] == MKG.Unverified and status[5] == MKG.Unverified  # [CUR] only
    assert status[17] == MKG.Current and status[33] == MKG.Current
    sources17 = set(kb.graph.objects(URIRef(rule + "R17"), MKG.source))
    assert sources17 == {SOURCE.S000, SOURCE.S003, SOURCE.CUR, SOURCE.TRIALS}
    assert (URIRef(rule + "R17"), MKG.supportingTrial, TRIAL.castor) in kb.graph
    for i, st in status.items():  # a rule resting only on [CUR] is unverified
        srcs = set(kb.graph.objects(URIRef(f"{rule}R{i}"), MKG.source))
        if srcs == {SOURCE.CUR}:
            assert st == MKG.Unverified, i


def test_disagreements(kb: KnowledgeBase) -> None:
    disagreements = list(kb.graph.subjects(RDF.type, MKG.Disagreement))
    assert len(disagreements) == 13
    for node in disagreements:
        assert kb.graph.value(node, MKG.topic) is not None
        assert len(list(kb.graph.objects(node, URIRef("http://www.w3.org/2000/01/rdf-schema#comment")))) == 3
        assert list(kb.graph.objects(node, MKG.source))


# ---------------------------------------------------------------- ontology files

def test_entry_point_imports_every_part() -> None:
    g = Graph().parse(ontology_dir() / "myeloma-kg.ttl")
    main_iri = URIRef(ONTOLOGY_BASE)
    assert (main_iri, RDF.type, OWL.Ontology) in g
    assert str(g.value(main_iri, OWL.versionInfo)) == "0.1.0"
    assert g.value(main_iri, URIRef("http://purl.org/dc/terms/license")) == URIRef("https://creativecommons.org/licenses/by/4.0/")
    imports = {str(o) for o in g.objects(main_iri, OWL.imports)}
    assert {f"{ONTOLOGY_BASE}/{p}" for p in PARTS} <= imports
    parts = set()
    for path in ontology_dir().glob("*.ttl"):  # every part file, whoever added it
        if path.name != "myeloma-kg.ttl":
            parts |= {str(s) for s in Graph().parse(path).subjects(RDF.type, OWL.Ontology)}
    assert imports == parts


def test_catalog_maps_every_ontology_iri() -> None:
    ns = {"c": "urn:oasis:names:tc:entity:xmlns:xml:catalog"}
    root = ET.parse(ontology_dir() / "catalog-v001.xml").getroot()
    mapping = {u.get("name"): u.get("uri") for u in root.iterfind(".//c:uri", ns)}
    for path in sorted(ontology_dir().glob("*.ttl")):
        g = Graph().parse(path)
        (onto,) = list(g.subjects(RDF.type, OWL.Ontology))
        assert mapping.get(str(onto)) == path.name, path.name
        version = g.value(onto, OWL.versionIRI)
        assert version is not None and mapping.get(str(version)) == path.name, path.name
        for imported in g.objects(onto, OWL.imports):
            assert (ontology_dir() / mapping[str(imported)]).is_file()


def test_load_kb_graph_is_cached_and_complete(kb: KnowledgeBase) -> None:
    graph = load_kb_graph()
    assert graph is load_kb_graph()
    assert KnowledgeBase.load() is kb and kb.graph is graph
    assert len(kb.inferred) > len(graph)


# ---------------------------------------------------------------- typed lookups and errors

def test_records_are_frozen(kb: KnowledgeBase) -> None:
    drug = kb.drug("lenalidomide")
    assert isinstance(drug, Drug) and isinstance(kb.regimen("rd"), Regimen)
    with pytest.raises(dataclasses.FrozenInstanceError):
        drug.label = "x"  # type: ignore[misc]
    assert drug.iri == "https://w3id.org/myeloma-kg/drug/lenalidomide"


@pytest.mark.parametrize(
    ("lookup", "identifier", "first"),
    [
        ("regimen", "DVd", "dvd"),
        ("regimen", "NRd", "ird"),
        ("regimen", "Pom-dex", "pd"),
        ("drug", "len", "lenalidomide"),
        ("drug", "lenalidomid", "lenalidomide"),
        ("drug", "Cilta-cel", "ciltacabtagene_autoleucel"),
        ("trial", "CASTOR", "castor"),
        ("trial", "castr", "castor"),
    ],
)
def test_unknown_id_suggestions(kb: KnowledgeBase, lookup: str, identifier: str, first: str) -> None:
    with pytest.raises(UnknownIdentifierError) as info:
        getattr(kb, lookup)(identifier)
    err = info.value
    assert err.what == lookup and err.identifier == identifier
    assert err.suggestions[0] == first
    assert isinstance(err, DataError) and isinstance(err, KeyError)
    assert f"unknown {lookup} id {identifier!r}" in str(err)


def test_unknown_id_without_suggestion(kb: KnowledgeBase) -> None:
    with pytest.raises(UnknownIdentifierError) as info:
        kb.drug("zzzz")
    assert info.value.suggestions == []
    assert str(info.value) == "unknown drug id 'zzzz'"


def test_exact_label_suggests_only_its_id(kb: KnowledgeBase) -> None:
    with pytest.raises(UnknownIdentifierError) as info:
        kb.regimen("DVd")
    assert info.value.suggestions == ["dvd"]


# ---------------------------------------------------------------- statistics and export

def test_stats(kb: KnowledgeBase) -> None:
    stats = kb.stats()
    assert stats["drugs"] == 30
    assert stats["treatment_options"] == 53
    assert stats["procedures"] == 2 and stats["regimens"] == 51
    assert stats["front_line_regimens"] == 10
    assert stats["trials"] == 31 and stats["trial_results"] == 146
    assert stats["rules"] == 58 and stats["disagreements"] == 13
    assert stats["settings"] == 18 and stats["profiles"] >= 4 and stats["sources"] >= 10
    assert stats["triples"] == len(kb.graph) and stats["triples_with_closure"] == len(kb.inferred)
    assert all(isinstance(v, int) for v in stats.values())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # rdflib's own JSON-LD parser
@pytest.mark.parametrize(("fmt", "rdflib_format"), [("ttl", "turtle"), ("jsonld", "json-ld")])  # owl: test_cli_export
def test_export_round_trips(kb: KnowledgeBase, fmt: str, rdflib_format: str) -> None:
    data = kb.serialize(fmt)
    back = Graph().parse(data=data, format=rdflib_format)
    assert len(back) == len(kb.merged_graph())
    assert list(back.subjects(RDF.type, OWL.Ontology)) == [URIRef(ONTOLOGY_BASE)]
    assert not list(back.objects(None, OWL.imports))


def test_export_inferred_is_larger(kb: KnowledgeBase) -> None:
    assert len(kb.merged_graph(inferred=True)) > len(kb.merged_graph())
    with pytest.raises(ValueError):
        kb.serialize("csv")


# ---------------------------------------------------------------- command line

def test_cli_stats_json() -> None:
    out = CliRunner().invoke(main, ["kb", "stats", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["drugs"] == 30


def test_cli_stats_table() -> None:
    out = CliRunner().invoke(main, ["kb", "stats"])
    assert out.exit_code == 0 and re.search(r"^trials\s+31$", out.output, re.M)


def test_cli_check_passes() -> None:
    out = CliRunner().invoke(main, ["kb", "check"])
    assert out.exit_code == 0, out.output
    assert "passes all" in out.output


def test_cli_export(tmp_path: Path) -> None:
    target = tmp_path / "kb.owl"
    out = CliRunner().invoke(main, ["kb", "export", "--format", "owl", "--out", str(target)])
    assert out.exit_code == 0, out.output
    back = Graph().parse(target, format="xml")  # RDF/XML, what Protégé and owlready2 read
    assert len(back) == len(KnowledgeBase.load().merged_graph())
    assert list(back.subjects(RDF.type, OWL.Ontology)) == [URIRef(ONTOLOGY_BASE)]


def test_recommend_delegates(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    import myeloma_kg.recommend as recommend_module

    calls = []
    monkeypatch.setattr(recommend_module, "recommend_patient",
                        lambda k, patient, profile="default": calls.append((k, patient, profile)) or "ok")
    assert kb.recommend("patient.yaml", profile="s003-2025") == "ok"
    assert calls == [(kb, "patient.yaml", "s003-2025")]


def test_from_files_and_parse_errors(tmp_path: Path) -> None:
    small = KnowledgeBase.from_files([ontology_dir() / "core.ttl", ontology_dir() / "drugs.ttl"])
    assert len(small.drugs()) == 30 and small.regimens() == ()
    broken = tmp_path / "broken.ttl"
    broken.write_text("@prefix mkg: <https://w3id.org/myeloma-kg/> .\nmkg:x mkg:y", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="broken.ttl"):
        KnowledgeBase.from_files([ontology_dir() / "core.ttl", broken])
