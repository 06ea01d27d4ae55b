"""queries/prepare/day-numbers.rq: the day numbers the refractoriness windows (R6, R9, R18) subtract, checked
against Python's calendar on Oxigraph and on rdflib's SPARQL (the query is plain SPARQL 1.1)."""

from __future__ import annotations

import datetime

import pyoxigraph as ox
import rdflib
from hypothesis import given, settings
from hypothesis import strategies as st

from myeloma_kg.queries import derivation_queries

MKG = "https://w3id.org/myeloma-kg/"
EPOCH = datetime.date(1970, 1, 1).toordinal()
QUERY = next(q for q in derivation_queries() if q.path.stem == "day-numbers")

# the calendar's edges: leap days, century years with and without a leap day, year ends, the epoch itself
EDGES = [datetime.date(y, m, d) for y in (1900, 1970, 1999, 2000, 2023, 2024, 2100)
         for m, d in ((1, 1), (2, 28), (3, 1), (12, 31))] + [datetime.date(2000, 2, 29), datetime.date(2024, 2, 29)]


def _patient(progressions: list[datetime.date], last_doses: list[datetime.date]) -> str:
    rows = [f"<{MKG}p> a <{MKG}Patient> ."]
    for i, day in enumerate(progressions):
        rows.append(f"<{MKG}p> <{MKG}hasLine> <{MKG}line{i}> .")
        rows.append(f'<{MKG}line{i}> <{MKG}progression> "{day.isoformat()}"^^<http://www.w3.org/2001/XMLSchema#date> .')
    rows.append(f"<{MKG}p> <{MKG}hasLine> <{MKG}dosed> .")
    for i, day in enumerate(last_doses):
        rows.append(f"<{MKG}dosed> <{MKG}administration> <{MKG}adm{i}> .")
        rows.append(f'<{MKG}adm{i}> <{MKG}lastDose> "{day.isoformat()}"^^<http://www.w3.org/2001/XMLSchema#date> .')
    return "\n".join(rows)


def _expected(progressions, last_doses) -> set[tuple[str, str, int]]:
    return ({(f"{MKG}line{i}", f"{MKG}progressionDay", d.toordinal() - EPOCH) for i, d in enumerate(progressions)}
            | {(f"{MKG}adm{i}", f"{MKG}lastDoseDay", d.toordinal() - EPOCH) for i, d in enumerate(last_doses)})


def _oxigraph(text: str) -> set[tuple[str, str, int]]:
    store = ox.Store()
    store.load(text.encode("utf-8"), format=ox.RdfFormat.TURTLE)
    return {(t.subject.value, t.predicate.value, int(t.object.value)) for t in store.query(QUERY.executable)}


def _rdflib(text: str) -> set[tuple[str, str, int]]:
    graph = rdflib.Graph()
    graph.parse(data=text, format="turtle")
    return {(str(s), str(p), int(o)) for s, p, o in graph.query(QUERY.executable)}


dates = st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2200, 12, 31))


@settings(max_examples=40, deadline=None)
@given(st.lists(dates, min_size=1, max_size=12), st.lists(dates, max_size=12))
def test_day_numbers_count_days_as_the_calendar_does(progressions, last_doses) -> None:
    text = _patient(progressions, last_doses)
    assert _oxigraph(text) == _expected(progressions, last_doses)


def test_the_calendar_edges_on_oxigraph_and_on_rdflib() -> None:
    text = _patient(EDGES, EDGES[:5])
    expected = _expected(EDGES, EDGES[:5])
    assert _oxigraph(text) == expected
    assert _rdflib(text) == expected  # plain SPARQL 1.1: no store-specific date arithmetic


def test_the_window_is_an_integer_difference_of_day_numbers() -> None:
    # 60 days inclusive (R6, R9, R18): 2024-01-01 + 60 days is 2024-03-01 across a leap day
    text = _patient([datetime.date(2024, 3, 1), datetime.date(2024, 3, 2)], [datetime.date(2024, 1, 1)])
    days = {s.rsplit("/", 1)[1]: n for s, _, n in _oxigraph(text)}
    assert days["line0"] - days["adm0"] == 60 and days["line1"] - days["adm0"] == 61
