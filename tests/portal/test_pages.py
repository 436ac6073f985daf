"""Every portal page × every role: who may open it, and what they see in it."""

import pytest
from django.urls import reverse

from core.roles import Role

ALL_ROLES = [Role.ADMIN, Role.STAFF, Role.CPA, Role.CLIENT]

# (url name, kwargs or None, roles that may open it)
PAGES = [
    ("portal:dashboard", ALL_ROLES),
    ("portal:clients", [Role.ADMIN, Role.STAFF, Role.CPA]),
    ("portal:documents", ALL_ROLES),
    ("portal:account", ALL_ROLES),
]


@pytest.mark.parametrize("name", [p[0] for p in PAGES])
def test_anonymous_is_sent_to_login(web, name, db):
    url = reverse(name)
    response = web.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))
    assert "next=" in response["Location"]


@pytest.mark.parametrize(("name", "allowed"), PAGES)
@pytest.mark.parametrize("role", ALL_ROLES)
def test_page_by_role(signed_in, name, allowed, role):
    client, user = signed_in(role)
    response = client.get(reverse(name))
    if role in allowed:
        assert response.status_code == 200
        assert user.email.encode() in response.content  # the footer names the user
    else:
        # A client opening a CPA page: 404, like any object outside its scope.
        assert response.status_code == 404


def test_client_detail_matrix(signed_in, make_user, other_org):
    client_user = make_user(Role.CLIENT, first_name="Carla")
    foreign = make_user(Role.CLIENT, organization=other_org, first_name="Fritz")
    url, foreign_url = (
        reverse("portal:client-detail", args=[u.pk]) for u in (client_user, foreign)
    )
    for role in (Role.STAFF, Role.CPA):
        browser, _ = signed_in(role)
        assert browser.get(url).status_code == 200
        assert browser.get(foreign_url).status_code == 404  # foreign organization
    admin, _ = signed_in(Role.ADMIN)
    assert admin.get(foreign_url).status_code == 200
    me, _ = signed_in(client_user)
    assert me.get(url).status_code == 404  # a client opening a CPA page


def test_client_detail_is_only_for_clients(signed_in, make_user):
    colleague = make_user(Role.CPA)
    browser, _ = signed_in(Role.STAFF)
    # Staff may see the CPA user, but the client page is for clients only.
    assert (
        browser.get(reverse("portal:client-detail", args=[colleague.pk])).status_code
        == 404
    )


def test_dashboard_counts_and_recent_documents(
    signed_in, make_user, other_org, make_document
):
    c1, c2 = make_user(Role.CLIENT), make_user(Role.CLIENT)
    foreign = make_user(Role.CLIENT, organization=other_org)
    make_document(c1, title="W-2 form")
    make_document(c2, title="Receipts")
    make_document(foreign, title="Secret foreign")
    browser, cpa = signed_in(Role.CPA)
    response = browser.get(reverse("portal:dashboard"))
    assert response.context["client_count"] == 2
    assert response.context["document_count"] == 2
    assert cpa.organization.name.encode() in response.content
    assert b"W-2 form" in response.content and b"Receipts" in response.content
    assert b"Secret foreign" not in response.content

    mine, _ = signed_in(c1)
    response = mine.get(reverse("portal:dashboard"))
    assert response.context["document_count"] == 1
    assert response.context["client_count"] is None
    assert b"Receipts" not in response.content


def test_client_list_search_and_pagination(signed_in, make_user, other_org):
    for i in range(25):
        make_user(Role.CLIENT, first_name=f"Client{i:02d}", last_name="Zed")
    make_user(Role.CLIENT, first_name="Needle", last_name="Haystack")
    make_user(
        Role.CLIENT, organization=other_org, first_name="Needle", last_name="Other"
    )
    make_user(Role.CPA, first_name="Needle", last_name="Colleague")
    browser, _ = signed_in(Role.CPA)

    response = browser.get(reverse("portal:clients"))
    page = response.context["page"]
    assert page.paginator.count == 26
    assert len(page.object_list) == 20
    assert b"Page 1 of 2" in response.content
    response = browser.get(reverse("portal:clients"), {"page": 2})
    assert len(response.context["page"].object_list) == 6

    response = browser.get(reverse("portal:clients"), {"q": "needle"})
    names = [u.last_name for u in response.context["page"].object_list]
    assert names == ["Haystack"]  # not the other org's client, not the CPA


def test_documents_list_scoped_and_searchable(
    signed_in, make_user, other_org, make_document
):
    mine = make_user(Role.CLIENT)
    neighbour = make_user(Role.CLIENT)
    make_document(mine, title="Mine 1099")
    make_document(neighbour, title="Neighbour invoice")
    make_document(make_user(Role.CLIENT, organization=other_org), title="Foreign")

    browser, _ = signed_in(mine)
    titles = [d.title for d in browser.get(reverse("portal:documents")).context["page"]]
    assert titles == ["Mine 1099"]

    browser, _ = signed_in(Role.STAFF)
    response = browser.get(reverse("portal:documents"))
    assert {d.title for d in response.context["page"]} == {
        "Mine 1099",
        "Neighbour invoice",
    }
    response = browser.get(reverse("portal:documents"), {"q": "invoice"})
    assert [d.title for d in response.context["page"]] == ["Neighbour invoice"]


def test_download_scoping(signed_in, make_user, other_org, make_document):
    from tests.portal.conftest import PDF_BYTES

    owner = make_user(Role.CLIENT)
    doc = make_document(owner, name="return 2025.pdf")
    foreign_doc = make_document(make_user(Role.CLIENT, organization=other_org))
    url = reverse("portal:document-download", args=[doc.pk])

    for who in (owner, Role.CPA, Role.STAFF, Role.ADMIN):
        browser, _ = signed_in(who)
        response = browser.get(url)
        assert response.status_code == 200, who
        assert b"".join(response.streaming_content) == PDF_BYTES
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"].startswith("attachment;")
        assert "return 2025.pdf" in response["Content-Disposition"]

    other_client, _ = signed_in(Role.CLIENT)
    assert other_client.get(url).status_code == 404
    cpa, _ = signed_in(Role.CPA)
    foreign_url = reverse("portal:document-download", args=[foreign_doc.pk])
    assert cpa.get(foreign_url).status_code == 404
    assert cpa.get("/portal/documents/999999/download").status_code == 404
    assert cpa.get("/portal/documents/abc/download").status_code == 404


def test_profile_update(signed_in):
    browser, user = signed_in(Role.CLIENT)
    response = browser.post(
        reverse("portal:account"), {"first_name": "Ada", "last_name": "Lovelace"}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    page = browser.get(reverse("portal:account"))
    assert b"Profile saved." in page.content


def test_profile_errors_shown_beside_field(signed_in):
    browser, _ = signed_in(Role.CLIENT)
    response = browser.post(reverse("portal:account"), {"first_name": "x" * 151})
    assert response.status_code == 400
    html = response.content.decode()
    field_at = html.index('id="id_first_name"')
    error_at = html.index('id="id_first_name_errors"')
    assert 0 < error_at - field_at < 400  # the error sits right after its input


def test_mfa_required_org_sends_members_to_account(signed_in, org):
    org.mfa_required = True
    org.save()
    browser, _ = signed_in(Role.CPA)
    response = browser.get(reverse("portal:clients"))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:account")
    page = browser.get(reverse("portal:account"))
    assert page.status_code == 200
    assert b"requires two-factor" in page.content


def test_deactivated_user_session_ends(signed_in):
    browser, user = signed_in(Role.CPA)
    user.is_active = False
    user.save()
    response = browser.get(reverse("portal:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_portal_without_slash_redirects(web, db):
    response = web.get("/portal")
    assert response.status_code == 302 and response["Location"] == "/portal/"
