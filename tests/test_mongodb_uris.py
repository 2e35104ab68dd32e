"""TLS and mongodb+srv:// URIs, closing the client, and a dead MongoDB at startup.

The TLS server is a FerretDB of the test's own with a TLS listener (certificates from a
throwaway CA made here) next to a plain one, which the tests use to look at the contents.
SRV/TXT lookups are answered by a stand-in for dnspython's resolver that records the thread
it ran in; the SRV target name is mapped to 127.0.0.1 the same way.
"""

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.asyncresolver
import dns.name
import dns.resolver
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE, EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.translation import async_get_translations
from pymongo import AsyncMongoClient
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.spotify_scrobbler.const import (
    CONF_DATABASE,
    CONF_URI,
    DOMAIN,
)
from custom_components.spotify_scrobbler.engine.mongo_client import MONGO_TIMEOUT_MS, seedlist_uri

from .conftest import MongoDb, make_entry
from .ferretdb_process import FerretDBProcess, launcher_path
from .spotify_fake import Catalog, FakeSpotify
from .test_config_flow import start_user_flow
from .test_scrobbling import expected, play_recently, sensor_state, stored_plays, tick

DATABASE = "your_spotify"
SRV_HOST = "cluster0.example.test"  # what the user types after mongodb+srv://
SRV_TARGET = "node0.cluster0.example.test"  # what its SRV record points to
Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of a throwaway CA, a server certificate it signed, and an unrelated CA."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path


def report(*parts: object) -> None:
    """Measured numbers for the log of a run (pytest -s shows them)."""
    print(*parts)  # noqa: T201


def _self_signed_ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    """A CA and a server certificate for 127.0.0.1, localhost and the SRV target."""
    ca_key, ca_cert = _self_signed_ca("scrobbler test CA")
    _, other_ca = _self_signed_ca("someone else's CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName(SRV_TARGET),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        tmp_path / "ca.pem",
        tmp_path / "server.pem",
        tmp_path / "server.key",
        tmp_path / "other.pem",
    )
    files.ca.write_bytes(_pem(ca_cert))
    files.cert.write_bytes(_pem(cert))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.other_ca.write_bytes(_pem(other_ca))
    return files


@pytest.fixture
async def tls_ferretdb(
    tmp_path: Path, tls_files: TlsFiles, socket_enabled: None
) -> AsyncIterator[FerretDBProcess]:
    """A FerretDB with a TLS listener (``tls_port``) and a plain one (``port``)."""
    binary = launcher_path()
    if binary is None:
        pytest.fail("FERRETDB_LAUNCHER is not set: run the tests through scripts/test")
    server = FerretDBProcess(binary, tmp_path / "ferretdb-tls", tls=(tls_files.cert, tls_files.key))
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


@pytest.fixture
async def plain_db(tls_ferretdb: FerretDBProcess) -> AsyncIterator[MongoDb]:
    """The TLS server's database, seen through its plain listener."""
    client: AsyncMongoClient[Json] = AsyncMongoClient(tls_ferretdb.uri, tz_aware=True)
    try:
        yield client[DATABASE]
    finally:
        await client.close()


def tls_uri(server: FerretDBProcess, ca: Path) -> str:
    """What a user with their own CA types."""
    return f"mongodb://127.0.0.1:{server.tls_port}/?tls=true&tlsCAFile={ca}"


async def error_text(hass: HomeAssistant, key: str) -> str:
    """The English text the form shows for a config-flow error key."""
    texts = await async_get_translations(hass, "en", "config", [DOMAIN])
    return texts[f"component.{DOMAIN}.config.error.{key}"]


async def submit_mongodb(
    hass: HomeAssistant, client_factory: ClientSessionGenerator, uri: str
) -> tuple[Json, float]:
    """OAuth, then the MongoDB step with ``uri``; the result and the step's duration."""
    result = await start_user_flow(hass, client_factory)
    assert result["step_id"] == "mongodb"
    started = time.monotonic()
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URI: uri, CONF_DATABASE: DATABASE}
        )
    )
    seconds = time.monotonic() - started
    await hass.async_block_till_done(wait_background_tasks=True)
    return result, seconds


async def tls_handshake(port: int, ca: Path) -> str:
    """Do a TLS handshake with the server and return the negotiated protocol."""
    context = ssl.create_default_context(cafile=str(ca))
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
    )
    version = writer.get_extra_info("ssl_object").version()
    writer.close()
    await writer.wait_closed()
    return str(version)


@pytest.mark.usefixtures("current_request_with_host", "credentials")
async def test_tls_uri_flow_setup_and_scrobble(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    tls_files: TlsFiles,
    tls_ferretdb: FerretDBProcess,
    plain_db: MongoDb,
) -> None:
    """A TLS URI with the user's CA passes the flow; the entry scrobbles over TLS."""
    assert tls_ferretdb.tls_port is not None
    report(f"TLS handshake OK: {await tls_handshake(tls_ferretdb.tls_port, tls_files.ca)}")
    plays = play_recently(fake_spotify, catalog, [(0, 30.0), (1, 20.0)])

    result, seconds = await submit_mongodb(
        hass, hass_client_no_auth, tls_uri(tls_ferretdb, tls_files.ca)
    )
    # Includes the entry's first cycle: Spotify requests 1 s apart (default spacing).
    report(f"TLS flow step incl. setup and first cycle: {seconds:.2f} s")

    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    assert await stored_plays(plain_db) == expected(plays)

    later = play_recently(fake_spotify, catalog, [(2, 5.0)])
    await tick(hass)
    assert await stored_plays(plain_db) == expected(plays + later)


@pytest.mark.usefixtures("current_request_with_host", "credentials")
async def test_tls_with_wrong_ca_is_refused_quickly(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    fake_spotify: FakeSpotify,
    tls_files: TlsFiles,
    tls_ferretdb: FerretDBProcess,
    plain_db: MongoDb,
) -> None:
    """A CA that did not sign the server's certificate: cannot_connect, nothing created.

    The production timeout applies (no patching), so this also shows the flow does not hang.
    """
    result, seconds = await submit_mongodb(
        hass, hass_client_no_auth, tls_uri(tls_ferretdb, tls_files.other_ca)
    )
    report(f"wrong CA: form error after {seconds:.2f} s (timeout {MONGO_TIMEOUT_MS} ms)")

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert await error_text(hass, "cannot_connect") == "Cannot reach MongoDB at this URI."
    assert hass.config_entries.async_entries(DOMAIN) == []
    assert DATABASE not in await plain_db.client.list_database_names()


@dataclass(slots=True)
class DnsCall:
    """One SRV/TXT lookup: the name, the record type, and whether it ran on the loop."""

    name: str
    rdtype: str
    on_loop: bool


class _Answer(list[Any]):
    """Enough of dnspython's Answer for pymongo: iterable, sized, with an rrset TTL."""

    def __init__(self, records: list[Any]) -> None:
        super().__init__(records)
        self.rrset = type("RRset", (), {"ttl": 60})()


@dataclass(slots=True)
class FakeDns:
    """SRV and TXT records of SRV_HOST; every other name does not exist."""

    loop_thread: int
    port: int = 0
    calls: list[DnsCall] | None = None

    def answer(self, qname: Any, rdtype: Any) -> _Answer:
        name = str(qname).rstrip(".")
        if self.calls is not None:
            on_loop = threading.get_ident() == self.loop_thread
            self.calls.append(DnsCall(name, str(rdtype), on_loop))
        if name == f"_mongodb._tcp.{SRV_HOST}" and str(rdtype) == "SRV":
            target = dns.name.from_text(SRV_TARGET + ".")
            return _Answer([type("Srv", (), {"target": target, "port": self.port})()])
        if name == SRV_HOST and str(rdtype) == "TXT":
            return _Answer([type("Txt", (), {"strings": [b"authSource=admin"]})()])
        raise dns.resolver.NXDOMAIN


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """Answer pymongo's SRV/TXT lookups (blocking and asyncio resolvers) and resolve the target."""
    fake = FakeDns(loop_thread=threading.get_ident(), calls=[])

    def resolve(qname: Any, rdtype: Any, *args: Any, **kwargs: Any) -> _Answer:
        return fake.answer(qname, rdtype)

    async def async_resolve(qname: Any, rdtype: Any, *args: Any, **kwargs: Any) -> _Answer:
        return fake.answer(qname, rdtype)

    monkeypatch.setattr(dns.resolver, "resolve", resolve)
    monkeypatch.setattr(dns.asyncresolver, "resolve", async_resolve)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo("127.0.0.1" if host == SRV_TARGET else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


@pytest.fixture
def certificate_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Record every certificate load (name, on the event loop thread?).

    HA flags these as blocking calls in production but not in tests, hence the recorder.
    """
    loop_thread = threading.get_ident()
    loads: list[tuple[str, bool]] = []
    for name in (
        "load_verify_locations",
        "load_default_certs",
        "set_default_verify_paths",
        "load_cert_chain",
    ):
        original = getattr(ssl.SSLContext, name)

        def recorder(
            self: ssl.SSLContext, *args: Any, _name: str = name, _orig: Any = original, **kw: Any
        ) -> Any:
            loads.append((_name, threading.get_ident() == loop_thread))
            return _orig(self, *args, **kw)

        monkeypatch.setattr(ssl.SSLContext, name, recorder)
    return loads


@pytest.mark.usefixtures("current_request_with_host", "credentials")
async def test_srv_uri_resolved_off_the_event_loop(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    tls_files: TlsFiles,
    tls_ferretdb: FerretDBProcess,
    plain_db: MongoDb,
    fake_dns: FakeDns,
    certificate_loads: list[tuple[str, bool]],
) -> None:
    """An Atlas-style mongodb+srv:// URI (TLS implied) passes the flow, sets up, scrobbles.

    No DNS lookup and no certificate load runs on the event loop thread.
    """
    assert tls_ferretdb.tls_port is not None
    fake_dns.port = tls_ferretdb.tls_port
    plays = play_recently(fake_spotify, catalog, [(0, 30.0)])

    uri = f"mongodb+srv://{SRV_HOST}/?tlsCAFile={tls_files.ca}"
    result, _ = await submit_mongodb(hass, hass_client_no_auth, uri)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    assert await stored_plays(plain_db) == expected(plays)
    later = play_recently(fake_spotify, catalog, [(1, 5.0)])
    await tick(hass)
    assert await stored_plays(plain_db) == expected(plays + later)

    calls = fake_dns.calls or []
    report("DNS lookups:", calls)
    report("certificate loads:", certificate_loads)
    assert {(c.name, c.rdtype) for c in calls} >= {
        (f"_mongodb._tcp.{SRV_HOST}", "SRV"),
        (SRV_HOST, "TXT"),
    }
    assert [c for c in calls if c.on_loop] == []
    assert certificate_loads
    assert [name for name, on_loop in certificate_loads if on_loop] == []


@pytest.mark.usefixtures("current_request_with_host", "credentials")
async def test_unresolvable_srv_host_is_a_form_error(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    fake_spotify: FakeSpotify,
    fake_dns: FakeDns,
) -> None:
    """A mongodb+srv:// name without SRV records: a translated error, no entry."""
    result, seconds = await submit_mongodb(
        hass, hass_client_no_auth, "mongodb+srv://nowhere.example.test/"
    )
    report(f"unresolvable SRV host: form error after {seconds:.2f} s")

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_uri"}
    assert await error_text(hass, "invalid_uri") == "This is not a valid MongoDB URI."
    assert hass.config_entries.async_entries(DOMAIN) == []
    assert [(c.name, c.on_loop) for c in fake_dns.calls or []] == [
        ("_mongodb._tcp.nowhere.example.test", False)
    ]


def client_connections(server_port: int) -> set[int]:
    """Local ports of established TCP connections to 127.0.0.1:server_port (from /proc)."""
    target = f"0100007F:{server_port:04X}"
    ports: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == target and fields[3] == "01":  # rem_address, st == ESTABLISHED
            ports.add(int(fields[1].split(":")[1], 16))
    return ports


async def wait_for(hass: HomeAssistant, check: Callable[[], bool]) -> bool:
    """Poll ``check`` for up to 3 s (sockets close a few loop iterations after close())."""
    for _ in range(60):
        if check():
            return True
        await hass.async_add_executor_job(time.sleep, 0.05)
    return check()


async def test_client_closed_on_unload_and_reload(
    hass: HomeAssistant,
    credentials: None,
    fake_spotify: FakeSpotify,
    own_ferretdb: FerretDBProcess,
    mongo_db: MongoDb,
) -> None:
    """Every connection the entry opened is gone after unload; a reload replaces them all."""
    entry = make_entry(fake_spotify, mongo_db, uri=own_ferretdb.uri)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    first = client_connections(own_ferretdb.port)
    assert first, "the loaded entry holds connections to MongoDB"

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert await wait_for(hass, lambda: not first & client_connections(own_ferretdb.port))
    second = client_connections(own_ferretdb.port)
    assert second, "the reloaded entry has a client of its own"
    report(f"connections: {len(first)} before reload, {len(second)} after")

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert await wait_for(hass, lambda: not client_connections(own_ferretdb.port))


async def test_client_closed_when_home_assistant_stops(
    hass: HomeAssistant,
    credentials: None,
    fake_spotify: FakeSpotify,
    own_ferretdb: FerretDBProcess,
    mongo_db: MongoDb,
) -> None:
    """HA stopping closes the client too (entries are not unloaded at shutdown)."""
    entry = make_entry(fake_spotify, mongo_db, uri=own_ferretdb.uri)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert client_connections(own_ferretdb.port)

    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert await wait_for(hass, lambda: not client_connections(own_ferretdb.port))


async def setup_timed(hass: HomeAssistant, entry: MockConfigEntry) -> float:
    """Set the entry up (HA's startup path) and return how long it took."""
    started = time.monotonic()
    await hass.config_entries.async_setup(entry.entry_id)
    seconds = time.monotonic() - started
    await hass.async_block_till_done()
    return seconds


async def test_dead_mongodb_at_first_startup_is_retried_later(
    hass: HomeAssistant,
    credentials: None,
    fake_spotify: FakeSpotify,
    own_ferretdb: FerretDBProcess,
    mongo_db: MongoDb,
) -> None:
    """Never connected, server dead: setup gives up within the short timeout and retries later.

    Production timeouts (not patched); the duration is printed, the outcome asserted.
    """
    await own_ferretdb.kill()
    entry = make_entry(fake_spotify, mongo_db, uri=own_ferretdb.uri.split("?")[0])
    entry.add_to_hass(hass)
    seconds = await setup_timed(hass, entry)
    report(f"first setup against a dead MongoDB: {seconds:.2f} s (timeout {MONGO_TIMEOUT_MS} ms)")
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_dead_mongodb_at_restart_starts_from_the_outbox(
    hass: HomeAssistant,
    credentials: None,
    fake_spotify: FakeSpotify,
    catalog: Catalog,
    own_ferretdb: FerretDBProcess,
    mongo_db: MongoDb,
) -> None:
    """Connected before, server dead at the next start: the entry loads from its snapshot."""
    play_recently(fake_spotify, catalog, [(0, 30.0)])
    entry = make_entry(fake_spotify, mongo_db, uri=own_ferretdb.uri.split("?")[0])
    entry.add_to_hass(hass)
    await setup_timed(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    # "Restart": HA writes delayed saves (the outbox's snapshot) when it stops.
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    await own_ferretdb.kill()
    seconds = await setup_timed(hass, entry)
    report(f"setup from the outbox, MongoDB dead: {seconds:.2f} s (timeout {MONGO_TIMEOUT_MS} ms)")
    assert entry.state is ConfigEntryState.LOADED
    assert sensor_state(hass, fake_spotify, "status") == "mongodb_unavailable"
    assert sensor_state(hass, fake_spotify, "total_plays") == "1"


@pytest.mark.parametrize(
    ("uri", "seedlist"),
    [
        (
            f"mongodb+srv://user:p%40ss@{SRV_HOST}/mydb?retryWrites=true&srvMaxHosts=1",
            (
                f"mongodb://user:p%40ss@{SRV_TARGET}:27017/mydb?retryWrites=true"
                "&authSource=admin&tls=true"
            ),
        ),
        (
            f"mongodb+srv://{SRV_HOST}?tls=false&authSource=other",
            f"mongodb://{SRV_TARGET}:27017/?tls=false&authSource=other",
        ),
    ],
)
def test_srv_uri_becomes_the_seedlist_it_stands_for(
    fake_dns: FakeDns, uri: str, seedlist: str
) -> None:
    """Credentials, path and options are kept; TXT options and TLS are added unless given."""
    fake_dns.port = 27017
    assert seedlist_uri(uri, 1.0) == seedlist
