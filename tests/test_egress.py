"""Egress: the provider HTTP client through a local CONNECT proxy and against a TLS listener that requires
a client certificate (mutual TLS), with a per-provider CA bundle. Certificates are made here."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.integrations import httpclient, transport
from shared.integrations.httpclient import ConnectFailed, HttpClient, ProxySettings, TlsConfig
from shared.reliability.errors import ProviderUnavailable


# -- certificates ---------------------------------------------------------------------------------------
def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key, issuer: str, issuer_key, *, ca: bool = False, server: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                            critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if server:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_client_cert: Path  # signed by a CA the server does not trust
    other_client_key: Path


def _write(path: Path, cert: x509.Certificate | None = None, key=None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("ca", "server", "client", "rogue_ca", "other")}
    ca = _cert("DVCI test gateway CA", keys["ca"], "DVCI test gateway CA", keys["ca"], ca=True)
    rogue = _cert("Someone else's CA", keys["rogue_ca"], "Someone else's CA", keys["rogue_ca"], ca=True)
    assert rogue
    return Pki(
        ca=_write(d / "ca.pem", ca),
        server_cert=_write(d / "server.pem", _cert("localhost", keys["server"], "DVCI test gateway CA", keys["ca"],
                                                   server=True)),
        server_key=_write(d / "server.key", key=keys["server"]),
        client_cert=_write(d / "client.pem", _cert("dvci-client", keys["client"], "DVCI test gateway CA",
                                                   keys["ca"])),
        client_key=_write(d / "client.key", key=keys["client"]),
        other_client_cert=_write(d / "other.pem", _cert("dvci-client", keys["other"], "Someone else's CA",
                                                        keys["rogue_ca"])),
        other_client_key=_write(d / "other.key", key=keys["other"]),
    )


# -- the gateway: TLS that requires a client certificate ------------------------------------------------
# A threaded server on blocking TLS sockets, as gateways (nginx, F5) behave: a refused client certificate
# is answered with a TLS alert. (asyncio's own TLS servers close without sending the alert.)
@dataclass
class Gateway:
    url: str
    port: int
    seen: list[str] = field(default_factory=list)  # CN of the client certificate of each request handled


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def gateway(pki):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    gw = Gateway("", 0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            peer = self.connection.getpeercert()  # type: ignore[attr-defined]
            cn = dict(x[0] for x in peer["subject"])["commonName"] if peer else "-"
            gw.seen.append(cn)
            answer = orjson.dumps({"ok": True, "client": cn, "body": body.decode()})
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    gw.port = server.server_address[1]
    gw.url = f"https://localhost:{gw.port}/lgsp/api"
    yield gw
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
async def plain_origin():
    """A plain-HTTP origin: the method and path each request reached it with."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path_qs}")
        return web.Response(text="plain ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner, port = await _serve(app)
    yield port, seen
    await runner.cleanup()


# -- the proxy: CONNECT tunnels, and absolute-form HTTP forwarded as is ----------------------------------
@dataclass
class ForwardProxy:
    port: int = 0
    lines: list[str] = field(default_factory=list)  # the first line of every request the proxy received
    auth: list[str | None] = field(default_factory=list)
    refuse: bool = False  # answer CONNECT with 403

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            first, *header_lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
            self.lines.append(first)
            self.auth.append(headers.get("proxy-authorization"))
            method, target, _ = first.split(" ")
            if method == "CONNECT":
                if self.refuse:
                    writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                    await writer.drain()
                    return
                host, _, port = target.rpartition(":")
                try:
                    up_r, up_w = await asyncio.open_connection(host, int(port))
                except OSError:
                    writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                    await writer.drain()
                    return
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await self._pipe(reader, writer, up_r, up_w)
            else:  # absolute form: forward to the origin unchanged (HTTP/1.1 servers accept absolute form)
                hostport = target.split("/")[2]
                host, _, port = hostport.rpartition(":")
                up_r, up_w = await asyncio.open_connection(host, int(port))
                up_w.write(head)
                await self._pipe(reader, writer, up_r, up_w)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _pipe(self, r1, w1, r2, w2) -> None:
        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        await asyncio.gather(copy(r1, w2), copy(r2, w1))


@pytest.fixture(scope="module")
async def proxy_server():
    proxy = ForwardProxy()
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    yield proxy
    server.close()


@pytest.fixture
def proxy(proxy_server):
    proxy_server.lines.clear()
    proxy_server.auth.clear()
    proxy_server.refuse = False
    return proxy_server


@pytest.fixture
async def client_factory():
    clients: list[HttpClient] = []

    def make(environ: dict[str, str] | None = None) -> HttpClient:
        c = HttpClient(proxies=ProxySettings.from_env(environ or {}))
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


# -- tests ----------------------------------------------------------------------------------------------
async def test_mutual_tls_with_the_providers_ca_bundle_and_client_certificate(gateway, pki, client_factory):
    tls = TlsConfig(str(pki.ca), str(pki.client_cert), str(pki.client_key))
    client = client_factory()
    before = len(gateway.seen)
    for i in range(3):
        status, body = await client.request("POST", gateway.url, body=f"n{i}".encode(), tls=tls)
        assert status == 200 and orjson.loads(body) == {"ok": True, "client": "dvci-client", "body": f"n{i}"}
    assert gateway.seen[before:] == ["dvci-client"] * 3
    assert len(client._routes[("https", "localhost", gateway.port, tls)].idle) == 1  # one kept-alive connection


@pytest.mark.parametrize("which", ["no client certificate", "certificate from another CA"])
async def test_without_an_accepted_client_certificate_the_gateway_refuses_and_nothing_is_handled(
        gateway, pki, client_factory, which):
    tls = TlsConfig(str(pki.ca)) if which == "no client certificate" else \
        TlsConfig(str(pki.ca), str(pki.other_client_cert), str(pki.other_client_key))
    before = len(gateway.seen)
    with pytest.raises(ConnectFailed):
        await client_factory().request("POST", gateway.url, body=b"x", tls=tls)
    assert len(gateway.seen) == before


async def test_the_gateway_certificate_is_checked_against_the_ca_bundle(gateway, pki, client_factory):
    # the system trust store does not know the gateway's private CA
    with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
        await client_factory().request("GET", gateway.url, tls=TlsConfig(None, str(pki.client_cert),
                                                                         str(pki.client_key)))


async def test_https_goes_through_the_proxy_as_a_connect_tunnel(gateway, pki, proxy, client_factory):
    tls = TlsConfig(str(pki.ca), str(pki.client_cert), str(pki.client_key))
    client = client_factory({"HTTPS_PROXY": f"http://dvci:s3cret@127.0.0.1:{proxy.port}", "NO_PROXY": "example.vn"})
    before = len(gateway.seen)
    for _ in range(3):
        status, body = await client.request("POST", gateway.url, body=b"through", tls=tls)
        assert status == 200 and orjson.loads(body)["client"] == "dvci-client"
    assert proxy.lines == [f"CONNECT localhost:{gateway.port} HTTP/1.1"]  # one tunnel, kept alive
    assert proxy.auth == ["Basic " + base64.b64encode(b"dvci:s3cret").decode()]
    assert gateway.seen[before:] == ["dvci-client"] * 3


async def test_through_the_proxy_the_client_certificate_is_still_required(gateway, pki, proxy, client_factory):
    client = client_factory({"https_proxy": proxy.url})
    before = len(gateway.seen)
    with pytest.raises(ConnectFailed):
        await client.request("POST", gateway.url, body=b"x", tls=TlsConfig(str(pki.ca)))
    assert proxy.lines == [f"CONNECT localhost:{gateway.port} HTTP/1.1"]
    assert len(gateway.seen) == before


@pytest.mark.parametrize("no_proxy", ["localhost", "*", "example.vn,localhost", ".localhost,localhost:1"])
async def test_no_proxy_bypasses_the_proxy(gateway, pki, proxy, client_factory, no_proxy):
    tls = TlsConfig(str(pki.ca), str(pki.client_cert), str(pki.client_key))
    client = client_factory({"HTTPS_PROXY": proxy.url, "NO_PROXY": no_proxy})
    status, _ = await client.request("GET", gateway.url, tls=tls)
    assert status == 200
    assert proxy.lines == []


async def test_plain_http_goes_to_the_proxy_in_absolute_form(plain_origin, proxy, client_factory):
    port, seen = plain_origin
    client = client_factory({"HTTP_PROXY": f"http://u:p%40ss@127.0.0.1:{proxy.port}",
                             "HTTPS_PROXY": "http://127.0.0.1:9"})
    status, body = await client.request("POST", f"http://127.0.0.1:{port}/vnpt/api?x=1", body=b"{}")
    assert (status, body) == (200, b"plain ok")
    assert proxy.lines == [f"POST http://127.0.0.1:{port}/vnpt/api?x=1 HTTP/1.1"]
    assert proxy.auth == ["Basic " + base64.b64encode(b"u:p@ss").decode()]
    assert seen[-1] == "POST /vnpt/api?x=1"


async def test_a_proxy_refusing_connect_or_a_dead_origin_is_connect_failed(gateway, proxy, client_factory):
    client = client_factory({"HTTPS_PROXY": proxy.url})
    proxy.refuse = True
    with pytest.raises(ConnectFailed, match="403"):
        await client.request("GET", gateway.url)
    proxy.refuse = False
    with pytest.raises(ConnectFailed, match="502"):
        await client.request("GET", "https://127.0.0.1:9/none")  # nothing listens on the discard port


async def test_without_proxy_or_tls_settings_requests_go_direct(plain_origin, client_factory):
    port, seen = plain_origin
    client = client_factory({})
    assert client.proxies == ProxySettings()
    status, _ = await client.request("GET", f"http://127.0.0.1:{port}/direct")
    assert status == 200 and seen[-1] == "GET /direct"
    route = client._routes[("http", "127.0.0.1", port, None)]
    assert (route.proxy, route.target_prefix, route.extra_head) == (None, "", "")


def test_https_proxy_urls_are_refused_clearly():
    with pytest.raises(ValueError, match="only http://"):
        ProxySettings.from_env({"HTTPS_PROXY": "https://proxy.example.vn:3128"})


@pytest.fixture
def egress_env(monkeypatch, proxy, pki):
    """transport.request as providers call it, configured only by the environment."""
    httpclient.close_clients()
    httpclient.tls_for.cache_clear()
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("DVCI_LGSPTEST_GATEWAY_TLS_CA_FILE", str(pki.ca))
    monkeypatch.setenv("DVCI_LGSPTEST_GATEWAY_TLS_CERT_FILE", str(pki.client_cert))
    monkeypatch.setenv("DVCI_LGSPTEST_GATEWAY_TLS_KEY_FILE", str(pki.client_key))
    monkeypatch.setenv("DVCI_LGSPTEST_NOCERT_TLS_CA_FILE", str(pki.ca))
    yield
    monkeypatch.undo()
    httpclient.close_clients()  # the next get_client() reads the environment without the proxy
    httpclient.tls_for.cache_clear()


async def test_transport_takes_each_providers_tls_from_the_environment_and_the_proxy(gateway, proxy, egress_env):
    status, body = await transport.request("gateway", "POST", gateway.url, body=b"env", kind="lgsptest")
    assert status == 200 and orjson.loads(body)["client"] == "dvci-client"
    assert proxy.lines == [f"CONNECT localhost:{gateway.port} HTTP/1.1"]
    # a provider configured without a client certificate: refused at the TLS layer, so it may fail over
    with pytest.raises(ProviderUnavailable):
        await transport.request("nocert", "POST", gateway.url, body=b"env", kind="lgsptest")
