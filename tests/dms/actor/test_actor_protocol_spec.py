"""spec/protocol.md's worked example is the bytes this implementation produces."""

from __future__ import annotations

from pathlib import Path

from dms.actor import Accept, Admission, encode_message
from dms.actor._protocol_example import example, render
from ucan import TrustContext

SPEC = Path(__file__).resolve().parents[3] / "spec" / "protocol.md"


def test_protocol_spec_quotes_the_generated_example_exactly() -> None:
    assert render() in SPEC.read_text()


def test_example_request_is_admitted_by_its_subject() -> None:
    grant, request, _ = example()
    admission = Admission(TrustContext(request.sub), {request.sub}.__contains__)
    verdict = admission.admit(encode_message(request, [grant]), now=request.iat or 0)
    assert isinstance(verdict, Accept)
