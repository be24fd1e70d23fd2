"""The contract layer every interface shares: credential, envelope,
RequestID, error table, routing and content negotiation."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from facility.models import PlatformClient

SEARCH = "/CAP/AlgoFilePackages:search"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def assert_envelope(body: dict, code: int | str) -> None:
    assert list(body)[:2] == ["Code", "Message"]
    assert body["Code"] == code
    assert isinstance(body["Message"], str) and body["Message"]
    assert "RequestID" in body


def test_request_without_credential_gets_401_envelope(anonymous_api):
    response = anonymous_api.post(SEARCH, {})
    assert response.status_code == 401
    assert_envelope(response.body, 40100)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_cad_interface_answers_401_with_string_code(anonymous_api):
    response = anonymous_api.delete("/CAD/Machine/AlgoFilePackages/abc")
    assert response.status_code == 401
    assert_envelope(response.body, "40100")


def test_unknown_token_is_refused(anonymous_api):
    anonymous_api.token = "fac_not-a-real-token-at-all-xxxxxxxx"
    response = anonymous_api.post(SEARCH, {})
    assert response.status_code == 401
    assert "unknown or revoked" in response.body["Message"]


def test_revoked_client_is_refused(api, platform_token):
    PlatformClient.objects.update(revoked_at=timezone.now())
    response = api.post(SEARCH, {})
    assert response.status_code == 401


def test_x_api_key_header_is_accepted(anonymous_api, platform_token):
    response = anonymous_api.post(SEARCH, {}, **{"X-API-Key": platform_token})
    assert response.status_code == 200
    assert_envelope(response.body, 0)


def test_success_envelope_has_code_message_data_request_id_in_order(api):
    response = api.post(SEARCH, {})
    assert response.status_code == 200
    assert list(response.body) == ["Code", "Message", "Data", "RequestID"]
    assert response.body["Message"] == "success"


def test_request_id_is_echoed_from_header(api):
    response = api.post(SEARCH, {}, **{"X-Request-ID": "platform-req-42"})
    assert response.body["RequestID"] == "platform-req-42"
    assert response["X-Request-ID"] == "platform-req-42"


def test_request_id_is_generated_when_absent_or_unusable(api):
    assert UUID.match(api.post(SEARCH, {}).body["RequestID"])
    response = api.post(SEARCH, {}, **{"X-Request-ID": "x" * 129})
    assert UUID.match(response.body["RequestID"])


def test_errors_carry_the_request_id_too(anonymous_api):
    response = anonymous_api.post(SEARCH, {}, **{"X-Request-ID": "abc-1"})
    assert response.body["RequestID"] == "abc-1"


@pytest.mark.parametrize(
    "path", ["/CAP/NoSuchThing", "/CAP/AlgoFilePackages:search/", "/CAP/AlgoFilePackages:nope"]
)
def test_unknown_uri_gets_404_envelope(api, path):
    response = api.post(path, {})
    assert response.status_code == 404
    assert_envelope(response.body, 40401)
    assert "trailing slash" in response.body["Message"]


def test_wrong_method_gets_405_envelope(api):
    response = api.get("/CAP/AlgoFilePackages")
    assert response.status_code == 405
    assert_envelope(response.body, 40500)


def test_non_json_content_type_gets_415(api):
    response = api.post(SEARCH, raw=b"<xml/>", content_type="application/xml")
    assert response.status_code == 415
    assert_envelope(response.body, 41500)
    assert "application/json" in response.body["Message"]


def test_json_sent_as_text_plain_is_read(api):
    response = api.post(SEARCH, raw=b'{"PageSize": 1}', content_type="text/plain")
    assert response.status_code == 200
    assert response.body["Data"]["PageSize"] == 1


def test_json_without_content_type_is_read(api):
    response = api.post(SEARCH, raw=b'{"PageSize": 2}', content_type="")
    assert response.status_code == 200
    assert response.body["Data"]["PageSize"] == 2


def test_malformed_json_gets_400_saying_so(api):
    response = api.post(SEARCH, raw=b'{"PageSize": ', content_type="application/json")
    assert response.status_code == 400
    assert_envelope(response.body, 40001)
    assert "not valid JSON" in response.body["Message"]


def test_body_that_is_not_an_object_is_refused(api):
    response = api.post(SEARCH, [1, 2])
    assert response.status_code == 400
    assert "JSON object" in response.body["Message"]


def test_oversized_body_gets_413(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post(SEARCH, {"Name": "x" * 5000})
    assert response.status_code == 413
    assert_envelope(response.body, 41300)


def test_validation_errors_name_every_field_and_rule(api):
    response = api.post(SEARCH, {"PageNumber": 0, "PageSize": 5000, "Name": 7})
    assert response.status_code == 400
    message = response.body["Message"]
    assert "PageNumber: must be at least 1" in message
    assert "PageSize: must be at most 1000" in message
    assert "Name: must be a string" in message
    fields = {error["Field"] for error in response.body["Data"]["Errors"]}
    assert fields == {"PageNumber", "PageSize", "Name"}


def test_integer_fields_refuse_strings_and_booleans(api):
    for bad in ("1", True, 1.5):
        response = api.post(SEARCH, {"PageNumber": bad})
        assert response.status_code == 400, bad
        assert "PageNumber: must be an integer" in response.body["Message"]


def test_create_platform_client_prints_a_working_token(anonymous_api):
    out = StringIO()
    call_command("create_platform_client", "city-platform", "--quiet", stdout=out)
    token = out.getvalue().strip()
    assert token.startswith("fac_")
    anonymous_api.token = token
    assert anonymous_api.post(SEARCH, {}).status_code == 200
    client = PlatformClient.objects.get(name="city-platform")
    assert client.token_hash != token  # only a hash is kept


def test_create_platform_client_refuses_duplicates_and_rotates(anonymous_api):
    call_command("create_platform_client", "p", "--quiet", stdout=StringIO())
    with pytest.raises(CommandError, match="--rotate"):
        call_command("create_platform_client", "p", stdout=StringIO())
    out = StringIO()
    call_command("create_platform_client", "p", "--rotate", "--quiet", stdout=out)
    anonymous_api.token = out.getvalue().strip()
    assert anonymous_api.post(SEARCH, {}).status_code == 200


def test_schema_documents_every_answer_inside_the_envelope(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    operations = [
        (path, method, op) for path, item in schema["paths"].items() for method, op in item.items()
    ]
    assert operations
    for path, method, op in operations:
        for status, answer in op["responses"].items():
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
            assert {"Code", "Message", "RequestID"} <= set(component["properties"]), (
                path,
                method,
                status,
            )
        if not path.startswith("/internal/"):  # engines use their own credential there
            assert op["security"] == [{"PlatformToken": []}], path


def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn.jsdelivr" not in response.content
