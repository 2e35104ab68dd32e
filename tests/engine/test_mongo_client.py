"""MongoDB errors as users read them."""

import socket

import pytest
from pymongo.errors import OperationFailure, PyMongoError

from custom_components.spotify_scrobbler.engine import mongo_client
from custom_components.spotify_scrobbler.engine.mongo_client import (
    build_mongo_client,
    describe_error,
)


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_unreachable_server_is_described_without_the_topology(
    monkeypatch: pytest.MonkeyPatch, socket_enabled: None
) -> None:
    """PyMongo's timeout text ends with a screenful of topology: users get the cause only."""
    monkeypatch.setattr(mongo_client, "MONGO_TIMEOUT_MS", 300)
    port = closed_port()
    client = build_mongo_client(f"mongodb://127.0.0.1:{port}", appname="test")
    try:
        with pytest.raises(PyMongoError) as err:
            await client.admin.command("ping")
    finally:
        await client.close()
    assert "Topology Description" in str(err.value)  # what the driver says
    text = describe_error(err.value)
    assert text.startswith(f"127.0.0.1:{port}: ")
    assert "[Errno 111]" in text  # the cause: nothing listens there
    assert "Topology" not in text
    assert "configured timeouts" not in text


def test_other_errors_keep_their_text() -> None:
    """Only the driver's connection noise is cut; a server's own message stays whole."""
    err = OperationFailure("not authorized on your_spotify, Timeout: none", code=13)
    assert describe_error(err) == "not authorized on your_spotify, Timeout: none"
    assert describe_error(PyMongoError()) == "PyMongoError"
