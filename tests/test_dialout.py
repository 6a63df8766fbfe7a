"""Dial-out serving: settings, the registration line, listening and dialing together,
and a relay that vanishes without a FIN being noticed by PING."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from spdyasgi.config import Config, ConfigError
from spdyasgi.dialout import parse_target, preamble
from spdyasgi.main import main
from tests.procs import accepts, free_port
from tests.relaytools import curl, start_origin, start_relay, wait_for


def test_parse_target() -> None:
    assert parse_target("relay.example:8443") == ("relay.example", 8443)
    assert parse_target("[::1]:9") == ("::1", 9)
    for bad in ("relay", ":80", "host:0", "host:http", "host:70000"):
        with pytest.raises(ValueError, match="is not HOST:PORT"):
            parse_target(bad)


def test_preamble() -> None:
    assert preamble("tok", "a.test,b.test") == b"SPDYASGI-REGISTER tok a.test,b.test\r\n"
    assert preamble(None, "*") == b"SPDYASGI-REGISTER - *\r\n"
    with pytest.raises(ValueError, match="cannot contain spaces"):
        preamble("two words", "*")


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"connect": ["nope"]}, "connect"),
    ({"connect": ["h:1"], "connect_token": "a b"}, "connect_token"),
    ({"connect": ["h:1"], "connect_sessions": 0}, "connect_sessions"),
    ({"connect": ["h:1"], "connect_keyfile": "k.pem"}, "connect_keyfile"),
    ({"listen": False}, "listen"),
])
def test_bad_dialout_settings(kwargs: dict[str, object], option: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config("app:app", **kwargs)  # type: ignore[arg-type]
    assert info.value.option == option


def test_cli_rejects_bad_target() -> None:
    result = CliRunner().invoke(main, ["app:app", "--connect", "relay-without-port"])
    assert result.exit_code == 2
    assert "'--connect'" in result.output and "is not HOST:PORT" in result.output


def test_listening_and_dialing_out_together(tmp_path: Path) -> None:
    relay = start_relay(tmp_path, name="relay-both")
    port = free_port()
    origin = start_origin(tmp_path, relay, "both", "--connect-cleartext", "--listen",
                          "--port", str(port))
    try:
        wait_for(lambda: accepts(port), 20, "the origin to listen")
        direct = curl(f"http://127.0.0.1:{port}/whoami")
        relayed = curl(f"http://127.0.0.1:{relay.ports['visitors']}/whoami")
        assert direct.stdout.startswith(b"both") and relayed.stdout.startswith(b"both")
    finally:
        origin.stop()
        relay.stop()


def test_frozen_relay_noticed_by_ping_and_redialed(tmp_path: Path) -> None:
    relay = start_relay(tmp_path, name="relay-frozen")
    origin = start_origin(tmp_path, relay, "pinger", "--connect-cleartext",
                          "--ping-interval", "1", "--ping-timeout", "1")
    try:
        relay.proc.send_signal(signal.SIGSTOP)  # no FIN, no PING reply
        try:
            wait_for(lambda: "no PING reply within 1" in origin.text(), 20, "the PING timeout")
            wait_for(lambda: "Dial-out: reconnecting" in origin.text(), 10, "the redial")
        finally:
            relay.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: origin.text().count("; serving") >= 2, 30, "registering again")
    finally:
        origin.stop()
        relay.stop()
