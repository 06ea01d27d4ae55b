"""Hypothesis strategies: clinically plausible patient documents with consistent dates."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

FRONT_LINE = ["vrd", "vtd", "vcd", "vmp", "d_vmp", "d_vrd", "rd", "drd"]
RELAPSE = ["dvd", "kd", "krd", "ird", "drd", "erd", "dkd", "isa_kd", "dpd", "isa_pd", "kpd", "epd", "pd", "pcd", "pvd",
           "svd", "sd", "bvd", "bpd", "dara_mono", "cilta_cel", "ide_cel", "teclistamab", "talquetamab", "dcep",
           "vcd", "benda_dex", "ven_dex"]
RESPONSES = ["sCR", "CR", "VGPR", "PR", "MR", "SD", "PD"]
FINDINGS = ["t(11;14)", "t(4;14)", "t(14;16)", "t(14;20)", "del(17p)", "gain(1q)", "amp(1q)"]


def _iso(day: dt.date) -> str:
    return day.isoformat()


@st.composite
def patient_documents(draw: st.DrawFn, index: int = 0) -> dict:
    """A valid patient document with 1-5 prior lines."""
    n_lines = draw(st.integers(1, 5))
    day = dt.date(2014, 1, 1) + dt.timedelta(days=draw(st.integers(0, 1500)))
    lines = []
    for number in range(1, n_lines + 1):
        regimen = draw(st.sampled_from(FRONT_LINE if number == 1 else RELAPSE))
        start = day
        duration = draw(st.integers(60, 900))
        ongoing = draw(st.booleans())
        end = start + dt.timedelta(days=duration)
        gap = draw(st.sampled_from([0, 30, 59, 60, 61, 62, 90, 200, 400]))
        progression = end + dt.timedelta(days=gap)
        line: dict = {"number": number, "regimen": regimen, "start": _iso(start),
                      "bestResponse": draw(st.sampled_from(RESPONSES)), "progression": _iso(progression),
                      "progressionOnTherapy": ongoing}
        if ongoing:
            line["end"] = _iso(progression)
        else:
            line["end"] = _iso(end)
        if number == 1 and regimen in ("vrd", "vtd", "vcd", "d_vrd") and draw(st.booleans()):
            asct = start + dt.timedelta(days=min(duration, 150))
            line["end"] = _iso(max(end, asct)) if not ongoing else line["end"]
            line["transplant"] = {"kind": "autologous", "date": _iso(asct)}
            if draw(st.booleans()):
                m_start = asct + dt.timedelta(days=90)
                line["maintenance"] = {"drugs": ["lenalidomide"], "start": _iso(m_start)}
                if progression > m_start + dt.timedelta(days=30):
                    if draw(st.booleans()):
                        line["maintenance"]["end"] = _iso(progression - dt.timedelta(days=draw(st.sampled_from([0, 60, 61, 120]))))
                    line["end"] = _iso(min(max(end, asct), m_start))
                else:
                    del line["maintenance"]
                if progression < asct:
                    del line["transplant"]
        lines.append(line)
        day = progression + dt.timedelta(days=draw(st.integers(1, 60)))
    relapse_date = dt.date.fromisoformat(lines[-1]["progression"])
    assessment = max(day, relapse_date) + dt.timedelta(days=14)
    doc: dict = {
        "id": f"gen-{index}-{draw(st.integers(0, 10**6))}",
        "assessmentDate": _iso(assessment),
        "age": draw(st.integers(35, 92)),
        "frailty": draw(st.sampled_from(["fit", "intermediate", "frail"])),
        "ecog": draw(st.integers(0, 3)),
        "transplantEligible": draw(st.booleans()),
        "donorAvailable": draw(st.booleans()),
        "neuropathyGrade": draw(st.integers(0, 4)),
        "neuropathyPainful": draw(st.booleans()),
        "heartFailureNYHA": draw(st.integers(0, 4)),
        "cardiovascularRiskFactors": draw(st.booleans()),
        "creatinineClearance": draw(st.integers(15, 120)),
        "extramedullaryDisease": draw(st.booleans()),
        "plasmaCellLeukemia": False,
        "relapse": {"date": _iso(relapse_date), "kind": draw(st.sampled_from(["clinical", "biochemical"])),
                    "tempo": draw(st.sampled_from(["indolent", "aggressive"]))},
        "lines": lines,
    }
    if draw(st.booleans()):
        doc["cytogenetics"] = {"tested": _iso(relapse_date),
                               "findings": draw(st.lists(st.sampled_from(FINDINGS), unique=True, max_size=2))}
    return doc
