"""Schemathesis fuzzes every operation in /openapi.json, signed in as staff and as a
visitor: no answer is a server error, and every answer matches the schema (its status is
one the operation declares, its body the declared shape).

Each generated request runs inside a savepoint that is rolled back afterwards, so every
request meets the same data (a visitor who closes their account, or staff who sign out,
don't spoil the requests after them) and nothing has to be skipped as destructive.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import checks as st_checks
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode

from openvisit.auth.permissions import StaffRoleName
from tests.factories import sign_in_staff, sign_in_visitor

# Bounded: about 100 operations, each this many generated requests, per session kind and
# database. Raise it locally (OPENVISIT_FUZZ_EXAMPLES=200) for a deeper search.
EXAMPLES = int(os.environ.get("OPENVISIT_FUZZ_EXAMPLES", "6"))

CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
    st_checks.negative_data_rejection,
]


def _fuzz(app: Any, client: TestClient, db: Any, facility_id: int) -> list[str]:
    """Every operation, ``EXAMPLES`` generated requests each; the problems found. Valid
    requests are made at ``facility_id`` (where the data is), so they get past "not
    found" and into the operations themselves."""
    schema = schemathesis.openapi.from_dict(app.openapi())
    connection = db.info["factory"].kw["bind"]
    problems: list[str] = []
    for result in schema.get_all_operations():
        _runner(result.ok(), client, connection, problems, facility_id)()
    return problems


def _runner(
    operation: Any, client: TestClient, connection: Any, problems: list[str], facility_id: int
) -> Any:
    """A Hypothesis test of one operation that adds what it finds to ``problems``."""
    here = {"facility_id": facility_id} if "{facility_id}" in operation.path else None
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=here),
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        kwargs = case.as_transport_kwargs(base_url="https://testserver")
        kwargs.pop("cookies", None)
        if isinstance(kwargs.get("data"), bytes | str):
            kwargs["content"] = kwargs.pop("data")  # a raw body, in httpx's words
        try:
            request = client.build_request(**kwargs)
            request.read()  # a multipart body is a stream until read
        except (TypeError, AttributeError, ValueError):
            return  # httpx can't encode it (a "file" that is a number): no request to send
        savepoint = connection.begin_nested()
        try:
            response = client.send(request)
        except Exception:  # the app raised instead of answering: a 500
            problems.append(
                f"{operation.label}: {kwargs.get('url')} raised\n{traceback.format_exc()}"
            )
            return
        finally:
            savepoint.rollback()
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:
            found = "; ".join(
                line.strip("- ") for line in str(exc).splitlines() if line.startswith("- ")
            )
            problems.append(
                f"{operation.label}: {found or exc} | {kwargs['method']} {kwargs.get('url')} "
                f"params={kwargs.get('params')} json={str(kwargs.get('json'))[:120]} -> "
                f"{response.status_code} {response.text[:200]}"
            )

    return run


def _report(problems: list[str]) -> str:
    """The first problem of each kind on each operation."""
    seen: dict[str, str] = {}
    for problem in problems:
        seen.setdefault(problem.split(" | ")[0], problem)
    return f"{len(problems)} problems, {len(seen)} kinds:\n" + "\n".join(seen.values())


@pytest.fixture
def fuzz_client(app):  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=True) as c:
        yield c


def test_fuzzing_the_api_as_staff_finds_no_server_error_and_no_answer_off_the_schema(
    app, fuzz_client, db, personas, clock
):
    admin = personas.staff(StaffRoleName.PROVIDER_ADMIN)
    personas.resident  # noqa: B018
    personas.commit()
    sign_in_staff(fuzz_client, admin, clock)
    problems = _fuzz(app, fuzz_client, db, personas.facility.id)
    assert not problems, _report(problems)


def test_fuzzing_the_api_as_a_visitor_finds_no_server_error_and_no_answer_off_the_schema(
    app, fuzz_client, db, personas
):
    personas.resident  # noqa: B018
    personas.commit()
    sign_in_visitor(fuzz_client, personas.visitor)
    problems = _fuzz(app, fuzz_client, db, personas.facility.id)
    assert not problems, _report(problems)
