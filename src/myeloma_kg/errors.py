"""Exception families.

Two families, by who is at fault:

* :class:`DataError` — the caller's input is wrong (a patient document that does not parse, a
  field of the wrong type, an unknown drug id). Messages name the patient, the field and the fix.
* :class:`KnowledgeBaseError` — our own knowledge base or query files are broken.

A patient being ineligible for a regimen is a result, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass


class MyelomaKGError(Exception):
    """Base class of every error raised by myeloma-kg."""


class DataError(MyelomaKGError):
    """The caller's data is wrong.

    :param message: what is wrong and how to fix it.
    :param patient: the patient id, when known.
    :param field: the field path inside the patient document (for example ``lines[1].drugs[0]``).
    :param source: the file or input position the data came from.
    """

    kind = "data-error"

    def __init__(
        self,
        message: str,
        *,
        patient: str | None = None,
        field: str | None = None,
        source: str | None = None,
    ) -> None:
        self.message = message
        self.patient = patient
        self.field = field
        self.source = source
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.patient:
            where.append(f"patient {self.patient}")
        if self.field:
            where.append(f"field {self.field}")
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        return prefix + self.message

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-ready form, used by batch error files and the validation report."""
        return {
            "type": type(self).__name__,
            "kind": self.kind,
            "patient": self.patient,
            "field": self.field,
            "source": self.source,
            "message": self.message,
        }


class ParseError(DataError):
    """A document could not be parsed (malformed JSON, YAML, Turtle, JSON-LD or N-Triples).

    ``line`` and ``column`` are 1-based when the parser reports them.
    """

    kind = "parse-error"

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        patient: str | None = None,
    ) -> None:
        self.line = line
        self.column = column
        loc = source or "<input>"
        if line is not None:
            loc += f":{line}"
            if column is not None:
                loc += f":{column}"
        super().__init__(message, source=loc, patient=patient)

    def to_dict(self) -> dict[str, str | None]:  # type: ignore[override]
        data = super().to_dict()
        data.update({"line": self.line, "column": self.column})  # type: ignore[dict-item]
        return data


class FieldTypeError(DataError):
    """A field holds a value of the wrong type or shape."""

    kind = "field-type-error"


class UnknownIdentifierError(DataError, KeyError):
    """An id (drug, regimen, trial, recommendation) is not in the knowledge base.

    ``suggestions`` lists the closest known ids.
    """

    kind = "unknown-identifier"

    def __init__(
        self,
        what: str,
        identifier: str,
        suggestions: list[str] | None = None,
        *,
        patient: str | None = None,
        field: str | None = None,
    ) -> None:
        self.what = what
        self.identifier = identifier
        self.suggestions = list(suggestions or [])
        hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        DataError.__init__(
            self, f"unknown {what} id {identifier!r}{hint}", patient=patient, field=field
        )

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return DataError.__str__(self)


class PatientInvalidError(DataError):
    """A patient document failed validation; ``report`` holds every violation."""

    kind = "invalid-patient"

    def __init__(self, report: "object", patient: str | None = None) -> None:
        self.report = report
        count = len(getattr(report, "violations", []) or [])
        first = getattr(report, "violations", [None])
        detail = ""
        if first and first[0] is not None:
            v = first[0]
            detail = f"; first: {getattr(v, 'path', '')}: {getattr(v, 'message', '')}"
        super().__init__(f"{count} validation error(s){detail}", patient=patient)


class UsageError(MyelomaKGError):
    """The command was called wrongly (bad option, missing file)."""


class KnowledgeBaseError(MyelomaKGError):
    """The knowledge base or a query file is broken: our fault, not the caller's."""


@dataclass(frozen=True)
class Location:
    """Where in an input a value came from."""

    source: str
    line: int | None = None
    column: int | None = None
