"""BigChange's request bodies as Pydantic models. Unknown members are ignored (ASP.NET's
default); a known one of the wrong type is a 400 naming it and the value given, as
`invalid <name> <value>: expected <what>`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from jobyard import errors
from jobyard.domain.filters import parse_datetime
from jobyard.domain.numbers import MAX_INT64

Id = Annotated[StrictInt, Field(ge=1, le=MAX_INT64)]
ModelT = TypeVar("ModelT", bound="Body")

AN_ID = "an integer id from 1"
A_STRING = "a string"
OUTCOMES = "completedOk or completedWithIssues"


def bad(name: str, expected: str, value: Any) -> errors.ValidationFailed:
    return errors.ValidationFailed(f"invalid {name} {value!r}: expected {expected}", field=name)


class _Refused(ValueError):
    """A member's own 400, carried through Pydantic so that errors keep their member order."""

    def __init__(self, error: errors.ValidationFailed) -> None:
        super().__init__(error.message)
        self.error = error


def _time(value: Any, name: str) -> datetime | None:
    """A date-time member: null, else a string in RFC 3339."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Refused(bad(name, A_STRING, value))
    try:
        return parse_datetime(value, name=name)
    except errors.ValidationFailed as exc:
        raise _Refused(exc) from None


class Body(BaseModel):
    """A JSON object body; `EXPECTED` says what each member must be, for the 400."""

    model_config = ConfigDict(extra="ignore", populate_by_name=False, frozen=True)
    EXPECTED: ClassVar[dict[str, str]] = {}

    @classmethod
    def parse(cls: type[ModelT], data: Any, *, optional: bool = False) -> ModelT:
        """`data` (the JSON body) as this model; an absent body is `{}` when `optional`."""
        if data is None and optional:
            data = {}
        if not isinstance(data, dict):
            raise errors.ValidationFailed("the request body must be a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]  # in the order the members are declared
            refused = first.get("ctx", {}).get("error")
            if isinstance(refused, _Refused):
                raise refused.error from None
            name = str(first["loc"][0])
            raise bad(name, cls.EXPECTED[name], data.get(name)) from None


class NewJob(Body):
    """`POST /v1/jobs`: the job type is required; the rest is kept in the job's context."""

    EXPECTED: ClassVar[dict[str, str]] = {
        "typeId": AN_ID,
        "description": A_STRING,
        "reference": A_STRING,
        "contactId": AN_ID,
        "plannedStartAt": A_STRING,
    }

    type_id: Id = Field(alias="typeId")
    description: StrictStr | None = None
    reference: StrictStr | None = None
    contact_id: Id | None = Field(default=None, alias="contactId")
    planned_start: datetime | None = Field(default=None, alias="plannedStartAt")

    @model_validator(mode="before")
    @classmethod
    def _type_given(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("typeId") is None:
            raise _Refused(errors.ValidationFailed("typeId is required", field="typeId"))
        return data

    @field_validator("planned_start", mode="before")
    @classmethod
    def _planned_start(cls, value: Any) -> datetime | None:
        return _time(value, "plannedStartAt")


class JobResult(Body):
    """`PUT /v1/jobs/{id}/result`: the outcome; `statusModifiedAt` is checked, not kept (the
    services record their own clock)."""

    EXPECTED: ClassVar[dict[str, str]] = {
        "status": OUTCOMES,
        "result": A_STRING,
        "statusModifiedAt": A_STRING,
    }

    status: StrictStr
    result: StrictStr | None = None
    status_modified: datetime | None = Field(default=None, alias="statusModifiedAt")

    @field_validator("result")
    @classmethod
    def _result_not_empty(cls, value: str | None) -> str | None:
        if value == "":
            raise _Refused(
                errors.ValidationFailed("result must not be empty when given", field="result")
            )
        return value

    @field_validator("status_modified", mode="before")
    @classmethod
    def _status_modified(cls, value: Any) -> datetime | None:
        return _time(value, "statusModifiedAt")


class JobStart(Body):
    """`PUT /v1/jobs/{id}/start`: both members are checked, not kept (the services record
    their own clock and reason)."""

    EXPECTED: ClassVar[dict[str, str]] = {"comment": A_STRING, "statusModifiedAt": A_STRING}

    comment: StrictStr | None = None
    status_modified: datetime | None = Field(default=None, alias="statusModifiedAt")

    @field_validator("status_modified", mode="before")
    @classmethod
    def _status_modified(cls, value: Any) -> datetime | None:
        return _time(value, "statusModifiedAt")


class JobCancel(Body):
    """`PUT /v1/jobs/{id}/cancel`."""

    EXPECTED: ClassVar[dict[str, str]] = {"reason": A_STRING}

    reason: StrictStr | None = None
