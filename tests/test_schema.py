"""The OpenAPI schema is complete and valid, and its pages answer."""
import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings_or_errors(tmp_path):
    target = tmp_path / "schema.yaml"
    # --fail-on-warn turns every drf-spectacular warning (an unresolved type, a missing serializer) into a failure.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = target.read_text()
    for path in ("/api/entries/{id}/history/", "/api/entries/bulk-status/", "/api/imports/", "/api/export/", "/api/auth/token/"):
        assert f"  {path}:" in schema


@pytest.mark.parametrize("url,content_type", [
    ("/api/schema/", "application/vnd.oai.openapi"),
    ("/api/docs/", "text/html"),
    ("/api/redoc/", "text/html"),
])
def test_schema_pages_answer_for_a_logged_in_user(client, reader, url, content_type):
    client.force_login(reader)
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)


def test_schema_documents_errors_and_roles(client, reader):
    client.force_login(reader)
    schema = client.get("/api/schema/?format=json").json()
    create = schema["paths"]["/api/entries/"]["post"]
    assert {"201", "400", "401", "403", "409"} <= set(create["responses"])
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "reason"]
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])
