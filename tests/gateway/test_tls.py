"""HTTPS upstreams against a real TLS server with its own CA, made by the test
(``cryptography``): certificates verified by default, the CA bundle set per service or
by XENX_GATEWAY_CA_BUNDLE, a bad certificate is 502 bad_gateway (issue 10 item 9)."""

import datetime
import ssl
from ipaddress import ip_address

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import call_command

from gateway.registry import registry
from tests.conftest import assert_error
from tests.support.upstream import FakeUpstream

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def _name(common):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_ca(common="XenX test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(ca_key, ca_cert, *, san, expired=False):
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = (NOW - 10 * DAY, NOW - DAY) if expired else (NOW - DAY, NOW + 30 * DAY)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("upstream"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


TLS_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ntls-ok"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Files: ca (the CA that signed the servers), other_ca (unrelated), and server
    certificates: good (for 127.0.0.1), wrong_host, expired, self_signed."""
    root = tmp_path_factory.mktemp("pki")
    ca_key, ca = make_ca()
    other_key, other = make_ca("Another CA")
    files = {}
    for name, cert in (("ca", ca), ("other_ca", other)):
        files[name] = root / f"{name}.pem"
        files[name].write_bytes(pem(cert))
    leaves = {
        "good": make_leaf(ca_key, ca, san=[x509.IPAddress(ip_address("127.0.0.1"))]),
        "wrong_host": make_leaf(ca_key, ca, san=[x509.DNSName("other.example")]),
        "expired": make_leaf(
            ca_key, ca, san=[x509.IPAddress(ip_address("127.0.0.1"))], expired=True
        ),
        "self_signed": make_leaf(
            other_key, other, san=[x509.IPAddress(ip_address("127.0.0.1"))]
        ),
    }
    for name, (key, cert) in leaves.items():
        files[name] = (root / f"{name}.crt", root / f"{name}.key")
        files[name][0].write_bytes(pem(cert))
        files[name][1].write_bytes(key_pem(key))
    return files


@pytest.fixture
def tls_server(pki, test_servers):
    """tls_server(which="good"): a TLS upstream with that certificate of ``pki``."""

    def start(which="good"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*pki[which])
        return test_servers(FakeUpstream, TLS_OK, tls=context)

    return start


def test_verification_is_on_by_default(make_service, api, tls_server):
    up = tls_server()
    make_service("tls", [up.url], public=True)
    assert_error(
        api.get("/api/tls/x"), 502, "bad_gateway"
    )  # our CA is not the system's
    assert up.requests == []


def test_service_ca_bundle(make_service, api, tls_server, pki):
    up = tls_server()
    make_service("tls", [up.url], public=True, ca_bundle=str(pki["ca"]))
    resp = api.get("/api/tls/x")
    assert resp.status_code == 200 and resp.content == b"tls-ok"
    assert api.get("/api/tls/y").content == b"tls-ok"  # a pooled TLS connection


def test_global_ca_bundle(make_service, api, tls_server, pki, settings):
    settings.XENX_GATEWAY_CA_BUNDLE = str(pki["ca"])
    up = tls_server()
    make_service("tls", [up.url], public=True)
    assert api.get("/api/tls/x").content == b"tls-ok"


def test_service_bundle_wins_over_the_global_one(
    make_service, api, tls_server, pki, settings
):
    settings.XENX_GATEWAY_CA_BUNDLE = str(pki["ca"])
    up = tls_server()
    make_service("tls", [up.url], public=True, ca_bundle=str(pki["other_ca"]))
    assert_error(api.get("/api/tls/x"), 502, "bad_gateway")


@pytest.mark.parametrize("which", ["wrong_host", "expired", "self_signed"])
def test_bad_certificate_is_bad_gateway(make_service, api, tls_server, pki, which):
    up = tls_server(which)
    make_service("tls", [up.url], public=True, ca_bundle=str(pki["ca"]), retries=0)
    assert_error(api.get("/api/tls/x"), 502, "bad_gateway")
    assert up.requests == []


def test_ca_bundle_through_the_api_and_the_command(
    api, auth_client, make_user, pki, tls_server
):
    from core.roles import Role

    admin = auth_client(make_user(Role.ADMIN, organization=None))
    up = tls_server()
    payload = {
        "name": "tls",
        "public": True,
        "instances": [{"url": up.url}],
        "ca_bundle": "/nonexistent.pem",
    }
    resp = admin.post("/api/services", payload, format="json")
    assert_error(resp, 400, "validation_error")
    assert "ca_bundle" in resp.json()["error"]["details"]
    payload["ca_bundle"] = "relative.pem"
    assert_error(
        admin.post("/api/services", payload, format="json"), 400, "validation_error"
    )
    payload["ca_bundle"] = str(pki["ca"])
    resp = admin.post("/api/services", payload, format="json")
    assert resp.status_code == 201, resp.content
    assert resp.json()["ca_bundle"] == str(pki["ca"])
    registry.reset()
    assert api.get("/api/tls/x").content == b"tls-ok"
    call_command("register_service", "tls", up.url, "--ca-bundle", str(pki["other_ca"]))
    registry.reset()
    assert_error(api.get("/api/tls/x"), 502, "bad_gateway")


def test_bad_global_bundle_is_a_check_error(settings, tmp_path):
    from xenx.checks import check_settings

    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    settings.XENX_GATEWAY_CA_BUNDLE = str(bad)
    assert [m.id for m in check_settings(None)] == ["xenx.E008"]
