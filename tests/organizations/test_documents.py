"""Document upload, download and deletion (README "Organizations, users and documents" "Uploads")."""

import hashlib
import logging

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from auditlog.models import AuditEvent
from core.roles import Role
from organizations.models import Document
from tests.conftest import assert_error
from tests.organizations import files

pytestmark = pytest.mark.django_db

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def upload(client, name, data, **fields):
    body = {"file": SimpleUploadedFile(name, data, content_type="application/pdf")}
    body.update(fields)
    return client.post("/api/documents", body, format="multipart")


@pytest.fixture
def client_user(make_user):
    return make_user(Role.CLIENT)


@pytest.fixture
def as_client(auth_client, client_user):
    return auth_client(client_user)


@pytest.mark.parametrize(
    ("name", "data", "content_type", "stored_ext"),
    [
        ("return.pdf", files.PDF, "application/pdf", ".pdf"),
        ("scan.png", files.PNG, "image/png", ".png"),
        ("photo.jpg", files.JPEG, "image/jpeg", ".jpg"),
        ("photo.JPEG", files.JPEG, "image/jpeg", ".jpg"),
        ("notes.txt", files.TEXT, "text/plain; charset=utf-8", ".txt"),
        ("income.csv", files.CSV, "text/csv; charset=utf-8", ".csv"),
        ("ledger.xlsx", files.XLSX, XLSX_MIME, ".xlsx"),
        ("letter.docx", files.DOCX, DOCX_MIME, ".docx"),
        ("no-extension", files.PDF, "application/pdf", ".pdf"),
    ],
)
def test_each_allowed_type_is_stored_with_the_type_its_bytes_show(
    as_client, client_user, name, data, content_type, stored_ext
):
    resp = upload(as_client, name, data, title="My file")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["content_type"] == content_type
    assert body["original_filename"] == name
    assert body["owner"] == client_user.pk
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    doc = Document.objects.get(pk=body["id"])
    # Generated name: nothing of the client's name, the detected type's extension.
    stored = doc.file.name
    assert stored.startswith("documents/") and stored.endswith(stored_ext)
    assert name.rsplit(".", 1)[0].lower() not in stored.lower()
    with default_storage.open(stored, "rb") as fh:
        assert fh.read() == data
    assert AuditEvent.objects.filter(
        action="document.uploaded", target_id=str(doc.pk)
    ).exists()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("invoice.pdf", files.ELF),  # an executable named .pdf
        ("setup.pdf", files.MZ),
        ("setup.exe", files.MZ),
        ("picture.png", files.HTML),  # HTML named .png
        ("letter.docx", files.RANDOM_ZIP),  # a random zip named .docx
        ("sheet.xlsx", files.RANDOM_ZIP),
        ("archive.zip", files.RANDOM_ZIP),
        ("notes.txt", files.TEXT_WITH_NUL),
        ("notes.txt", files.NOT_UTF8),
        ("anim.gif", files.GIF),  # a real image type that is not allowed
        ("scan.png", files.PDF),  # allowed bytes, contradicting name
        ("return.pdf", files.PNG),
        ("letter.docx", files.XLSX),
        ("ledger.xlsx", files.DOCX),
        ("return.pdf", files.TEXT),
    ],
)
def test_bytes_not_allowed_or_contradicting_the_name_are_415(as_client, name, data):
    resp = upload(as_client, name, data)
    assert_error(resp, 415, "unsupported_media_type")
    assert not Document.objects.exists()


def test_zip_with_content_types_but_no_office_part_is_415(as_client):
    from tests.organizations.files import _CT, _zip

    fake = _zip({"[Content_Types].xml": _CT, "word/readme.txt": "hi"})
    assert_error(upload(as_client, "x.docx", fake), 415, "unsupported_media_type")


def test_declared_content_type_is_ignored(as_client):
    body = {"file": SimpleUploadedFile("x.png", files.HTML, content_type="image/png")}
    resp = as_client.post("/api/documents", body, format="multipart")
    assert_error(resp, 415, "unsupported_media_type")


def test_upload_over_the_limit_is_413(as_client, settings):
    settings.XENX_MAX_UPLOAD_BYTES = 100
    resp = upload(as_client, "notes.txt", b"a" * 101)
    assert_error(resp, 413, "payload_too_large")
    assert upload(as_client, "notes.txt", b"a" * 100).status_code == 201


def test_body_declared_far_over_the_limit_is_413_before_parsing(as_client, settings):
    settings.XENX_MAX_UPLOAD_BYTES = 10
    big = b"a" * (200 * 1024)
    resp = upload(as_client, "notes.txt", big)
    assert_error(resp, 413, "payload_too_large")
    assert not Document.objects.exists()


def test_empty_file_and_missing_file_are_400(as_client):
    assert_error(upload(as_client, "empty.txt", b""), 400, "validation_error")
    resp = as_client.post("/api/documents", {"title": "x"}, format="multipart")
    err = assert_error(resp, 400, "validation_error")
    assert "file" in err["details"]


def test_json_body_is_415(as_client):
    resp = as_client.post("/api/documents", {"title": "x"}, format="json")
    assert_error(resp, 415, "unsupported_media_type")


def test_title_defaults_to_the_file_name(as_client):
    assert upload(as_client, "w2.pdf", files.PDF).json()["title"] == "w2.pdf"


def test_download_streams_with_stored_type_and_attachment(as_client):
    doc_id = upload(as_client, "Return 2025.pdf", files.PDF).json()["id"]
    resp = as_client.get(f"/api/documents/{doc_id}/download")
    assert resp.status_code == 200
    assert resp.streaming
    assert b"".join(resp.streaming_content) == files.PDF
    assert resp["Content-Type"] == "application/pdf"
    assert resp["Content-Disposition"].startswith("attachment;")
    assert 'filename="Return 2025.pdf"' in resp["Content-Disposition"]
    assert resp["X-Content-Type-Options"] == "nosniff"
    assert resp["Content-Length"] == str(len(files.PDF))


def test_download_with_a_non_json_accept_header(as_client):
    doc_id = upload(as_client, "a.png", files.PNG).json()["id"]
    resp = as_client.get(f"/api/documents/{doc_id}/download", HTTP_ACCEPT="image/png")
    assert resp.status_code == 200
    assert resp["Content-Type"] == "image/png"


def test_text_download_is_served_as_text_attachment(as_client):
    doc_id = upload(as_client, "page.txt", files.HTML).json()["id"]
    resp = as_client.get(f"/api/documents/{doc_id}/download")
    assert resp["Content-Type"] == "text/plain; charset=utf-8"
    assert resp["Content-Disposition"].startswith("attachment;")


def test_delete_removes_row_and_file(as_client, django_capture_on_commit_callbacks):
    doc_id = upload(as_client, "a.pdf", files.PDF).json()["id"]
    name = Document.objects.get(pk=doc_id).file.name
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        resp = as_client.delete(f"/api/documents/{doc_id}")
    assert resp.status_code == 204
    assert not Document.objects.filter(pk=doc_id).exists()
    assert not default_storage.exists(name)
    assert AuditEvent.objects.filter(
        action="document.deleted", target_id=str(doc_id)
    ).exists()
    assert_error(as_client.get(f"/api/documents/{doc_id}"), 404, "not_found")


@pytest.mark.parametrize(
    "error",
    [PermissionError(13, "Permission denied"), OSError(30, "Read-only file system")],
    ids=type,
)
def test_a_file_the_storage_cannot_delete_leaves_the_delete_done(
    error, as_client, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    doc_id = upload(as_client, "a.pdf", files.PDF).json()["id"]
    name = Document.objects.get(pk=doc_id).file.name

    def refuse(self, stored):
        raise error

    monkeypatch.setattr(type(default_storage._wrapped), "delete", refuse)
    with (
        caplog.at_level(logging.ERROR, logger="organizations.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        resp = as_client.delete(f"/api/documents/{doc_id}")
    assert resp.status_code == 204
    assert not Document.objects.filter(pk=doc_id).exists()
    assert [
        r.getMessage() for r in caplog.records if r.name == "organizations.services"
    ] == [f"could not delete stored file {name}"]


def test_a_bug_deleting_the_file_is_not_taken_for_a_storage_failure(
    as_client, django_capture_on_commit_callbacks, monkeypatch
):
    doc_id = upload(as_client, "a.pdf", files.PDF).json()["id"]

    def broken(self, stored):
        raise AttributeError("a bug, not the file system")

    monkeypatch.setattr(type(default_storage._wrapped), "delete", broken)
    with (
        pytest.raises(AttributeError, match="a bug"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        as_client.delete(f"/api/documents/{doc_id}")


def test_file_stays_when_the_transaction_rolls_back(
    document_factory, django_capture_on_commit_callbacks
):
    from django.db import transaction

    doc = document_factory()
    name = doc.file.name
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                doc.delete()
                raise RuntimeError("abort")
        except RuntimeError:
            pass
    assert default_storage.exists(name)


@pytest.mark.parametrize("role", [Role.STAFF, Role.CPA])
def test_cpa_and_staff_upload_for_a_client_of_their_org(make_user, auth_client, role):
    client = make_user(Role.CLIENT)
    resp = upload(auth_client(make_user(role)), "a.pdf", files.PDF, owner=client.pk)
    assert resp.status_code == 201, resp.content
    assert resp.json()["owner"] == client.pk
    doc = Document.objects.get(pk=resp.json()["id"])
    assert doc.uploaded_by.role == role


@pytest.mark.parametrize("role", [Role.ADMIN, Role.STAFF, Role.CPA])
def test_uploader_other_than_a_client_must_name_the_owner(make_user, auth_client, role):
    resp = upload(auth_client(make_user(role)), "a.pdf", files.PDF)
    err = assert_error(resp, 400, "validation_error")
    assert "owner" in err["details"]


def test_owner_must_be_a_client(make_user, auth_client):
    staff = make_user(Role.STAFF)
    cpa = make_user(Role.CPA)
    resp = upload(auth_client(staff), "a.pdf", files.PDF, owner=cpa.pk)
    assert "owner" in assert_error(resp, 400, "validation_error")["details"]


def test_owner_outside_what_the_uploader_sees_is_unknown(
    make_user, auth_client, other_org
):
    foreign = make_user(Role.CLIENT, organization=other_org)
    for actor in (make_user(Role.CPA), make_user(Role.STAFF), make_user(Role.CLIENT)):
        resp = upload(auth_client(actor), "a.pdf", files.PDF, owner=foreign.pk)
        assert "owner" in assert_error(resp, 400, "validation_error")["details"]
    assert not Document.objects.exists()


def test_a_client_without_organization_uploads_for_itself(make_user, auth_client):
    loner = make_user(Role.CLIENT, organization=None)
    resp = upload(auth_client(loner), "a.pdf", files.PDF)
    assert resp.status_code == 201
    assert auth_client(loner).get("/api/documents").json()["count"] == 1


def test_list_filters_by_owner_and_search(make_user, auth_client, document_factory):
    a, b = make_user(Role.CLIENT), make_user(Role.CLIENT)
    document_factory(owner=a, title="Return 2025")
    document_factory(owner=a, title="Receipts")
    document_factory(owner=b, title="Return 2024")
    cpa = auth_client(make_user(Role.CPA))
    assert cpa.get("/api/documents").json()["count"] == 3
    assert cpa.get(f"/api/documents?owner={a.pk}").json()["count"] == 2
    assert cpa.get("/api/documents?search=return").json()["count"] == 2
    assert cpa.get(f"/api/documents?search=return&owner={b.pk}").json()["count"] == 1
    resp = cpa.get("/api/documents?owner=abc")
    assert_error(resp, 400, "validation_error")


def test_list_is_paginated(make_user, auth_client, document_factory):
    owner = make_user(Role.CLIENT)
    for _ in range(3):
        document_factory(owner=owner)
    body = auth_client(owner).get("/api/documents?page_size=2").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


def test_group_permission_can_take_away_upload(make_user, auth_client):
    from django.contrib.auth.models import Group, Permission

    Group.objects.get(name="client").permissions.remove(
        Permission.objects.get(codename="add_document")
    )
    resp = upload(auth_client(make_user(Role.CLIENT)), "a.pdf", files.PDF)
    assert_error(resp, 403, "permission_denied")


def test_download_of_a_missing_file_is_404(as_client):
    doc_id = upload(as_client, "a.pdf", files.PDF).json()["id"]
    default_storage.delete(Document.objects.get(pk=doc_id).file.name)
    resp = as_client.get(f"/api/documents/{doc_id}/download")
    assert_error(resp, 404, "not_found")


@pytest.mark.parametrize("role", [Role.STAFF, Role.ADMIN])
def test_admin_site_lists_only_visible_documents(
    make_user, document_factory, other_org, client, role
):
    mine = document_factory(owner=make_user(Role.CLIENT))
    foreign = document_factory(owner=make_user(Role.CLIENT, organization=other_org))
    user = make_user(role)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_document"))
    client.force_login(user)
    resp = client.get("/admin/organizations/document/")
    assert resp.status_code == 200
    shown = {d.pk for d in resp.context["cl"].queryset}
    expected = {mine.pk, foreign.pk} if role == Role.ADMIN else {mine.pk}
    assert shown == expected
    assert client.get("/admin/organizations/document/add/").status_code == 403


def test_control_characters_are_dropped_from_the_kept_name(as_client):
    resp = upload(as_client, "ev\x07il\x1b.pdf", files.PDF)
    assert resp.status_code == 201
    assert resp.json()["original_filename"] == "evil.pdf"
    download = as_client.get(f"/api/documents/{resp.json()['id']}/download")
    assert download.status_code == 200
    assert "\n" not in download["Content-Disposition"]


def test_upload_stops_reading_past_the_limit(as_client, settings, monkeypatch):
    """The 413 comes from the upload handler while the part streams in, before the
    service would look at the whole file."""
    from organizations import services

    settings.XENX_MAX_UPLOAD_BYTES = 1000

    def never(**kwargs):
        raise AssertionError("the service must not be reached")

    monkeypatch.setattr(services, "document_create", never)
    resp = upload(as_client, "notes.txt", b"a" * 5000)
    assert_error(resp, 413, "payload_too_large")
