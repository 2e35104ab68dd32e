"""MongoDB clients: short timeouts, mongodb+srv:// URIs resolved in the executor.

pymongo's AsyncMongoClient looks up SRV/TXT records at its first operation, on the event loop,
and rebuilds its TLS context there (certificate files read inside the loop: a blocking call).
Resolving them with the blocking resolver in the executor and giving the client the resulting
seed list avoids both. The price is SRV polling, which only matters for sharded clusters: the
records are read again at every setup (reload, restart).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from typing import Any
from urllib.parse import quote

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError
from pymongo.uri_parser import parse_uri

# Long enough for a remote server, short enough that a dead one fails a cycle quickly.
MONGO_TIMEOUT_MS = 5000
SRV_SCHEME = "mongodb+srv://"
# Options a TXT record may carry (MongoDB's "Initial DNS Seedlist Discovery" specification).
TXT_OPTIONS = ("authSource", "replicaSet", "loadBalanced")
# Meaningless, and refused, without SRV.
SRV_ONLY_OPTIONS = {"srvservicename", "srvmaxhosts"}
# What PyMongo appends to a connection error: its timeouts, and the whole topology.
DRIVER_DETAILS = re.compile(r" \(configured timeouts: [^)]*\)|, Timeout: .*", re.DOTALL)


def describe_error(err: BaseException) -> str:
    """A MongoDB error as a user reads it: "host:27017: [Errno 111] Connection refused".

    A server-selection timeout's text ends with the driver's topology description, a
    screenful that says nothing more to a user; logs and messages use this instead.
    """
    text = str(err)
    if isinstance(err, ServerSelectionTimeoutError):
        text = DRIVER_DETAILS.sub("", text)
    return text or type(err).__name__


def seedlist_uri(uri: str, timeout: float) -> str:
    """The mongodb:// URI an SRV URI stands for today; blocking (DNS), call it in the executor.

    Raises pymongo's ConfigurationError/InvalidURI like parse_uri when it cannot be resolved.
    """
    parsed = parse_uri(uri, connect_timeout=timeout)
    rest = uri[len(SRV_SCHEME) :]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    userinfo = netloc.rpartition("@")[0]
    path, _, query = tail.lstrip("/").partition("?")
    params = [p for p in query.replace(";", "&").split("&") if p]
    params = [p for p in params if p.split("=")[0].lower() not in SRV_ONLY_OPTIONS]
    given = {p.split("=")[0].lower() for p in params}
    options = parsed["options"]
    for name in TXT_OPTIONS:
        if name.lower() not in given and name in options:
            value = options[name]
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            params.append(f"{name}={quote(text, safe='')}")
    if not given & {"tls", "ssl"}:
        params.append("tls=true")  # implied by mongodb+srv://
    hosts = ",".join(
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in parsed["nodelist"]
    )
    credentials = f"{userinfo}@" if userinfo else ""
    return f"mongodb://{credentials}{hosts}/{path}?{'&'.join(params)}"


def database_identity(uri: str, database: str) -> str:
    """A short fingerprint of the server(s) and database a URI names, without credentials.

    Kept in the outbox file: a snapshot taken of another database (the entry was
    reconfigured) must not stand in for this one's contents.
    """
    scheme, _, rest = uri.partition("://")
    netloc = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
    hosts = ",".join(sorted(netloc.lower().split(",")))
    return hashlib.sha256(f"{scheme}://{hosts}/{database}".encode()).hexdigest()[:16]


def build_mongo_client(uri: str, *, appname: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client with short timeouts; call it in the executor (TLS certificates, SRV lookups)."""
    if uri.startswith(SRV_SCHEME):
        # Unresolvable now: the client looks the records up itself at first use, as before.
        with contextlib.suppress(PyMongoError):
            uri = seedlist_uri(uri, MONGO_TIMEOUT_MS / 1000)
    return AsyncMongoClient(
        uri,
        serverSelectionTimeoutMS=MONGO_TIMEOUT_MS,
        connectTimeoutMS=MONGO_TIMEOUT_MS,
        tz_aware=True,
        appname=appname,
    )
