"""What every answer to a generated operation must be, whatever the operation: no 5xx, a body
with `data` or `errors`, and every error coded, never INTERNAL. Resolver errors (FORBIDDEN,
NOT_FOUND, BAD_USER_INPUT, RATE_LIMITED, ...) are expected answers to random input."""

import schemathesis


@schemathesis.check
def tandem_contract(response, case):
    assert response.status_code < 500, f"server error {response.status_code}: {response.text[:500]}"
    body = response.json()
    assert "data" in body or "errors" in body, f"neither data nor errors: {body}"
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code, f"an error without extensions.code: {error}"
        assert code != "INTERNAL", f"an INTERNAL error: {error}"
