"""Fixtures for the end-to-end tests of the Python module against the Postfix test server.

Start the server with `tests/postfix/test-server.sh up` (needs root). These environment
variables override the defaults:

- MVSMTP_TEST_HOST (127.0.0.1) and MVSMTP_TEST_PORT (2525): the plain SMTP listener.
- MVSMTP_TEST_SUBMISSION_PORT (2587): STARTTLS and AUTH required.
- MVSMTP_TEST_IMPLICIT_PORT (4465): implicit TLS, AUTH required.
- MVSMTP_TEST_STATE (/tmp/mvsmtp-postfix): the server's state folder, with its CA in ca.crt.
- MVSMTP_TEST_MAILDIR (/tmp/mvsmtp-postfix/maildir): the catch-all maildir.
- MVSMTP_LIBRARY: the libmvsmtp to load, see python/mvsmtp.py.
"""

import os
import socket
import sys
import time
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Tuple

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPOSITORY_ROOT / "python"))

DELIVERY_TIMEOUT_SECONDS = 10.0

# Header fields that Postfix puts above the client's bytes when it delivers to the maildir.
POSTFIX_PREPENDED_FIELDS = (b"return-path:", b"x-original-to:", b"delivered-to:", b"received:")


def strip_postfix_headers(stored: bytes) -> bytes:
    """Remove the header lines that Postfix prepends, with their continuation lines.

    Only lines at the top are removed, so the result is the message as the client sent
    it, with LF line endings and dot-stuffing undone.
    """
    offset = 0
    in_prepended_field = False
    while offset < len(stored):
        line_end = stored.find(b"\n", offset)
        line_end = len(stored) if line_end == -1 else line_end + 1
        line = stored[offset:line_end]

        if line.lower().startswith(POSTFIX_PREPENDED_FIELDS):
            in_prepended_field = True
        elif in_prepended_field and line[:1] in (b" ", b"\t"):
            pass
        else:
            break
        offset = line_end
    return stored[offset:]


def read_original_to(path: Path) -> Optional[str]:
    """Return the address in the X-Original-To: field of a stored message, or None."""
    with open(path, "rb") as stored:
        for line in stored:
            if line in (b"\n", b"\r\n"):
                return None
            if line.lower().startswith(b"x-original-to:"):
                return line.split(b":", 1)[1].strip().decode("utf-8", errors="replace")
    return None


class Maildir:
    """Catch-all maildir of the test server, searched by the X-Original-To: address."""

    def __init__(self, root: Path) -> None:
        self.new_directory = root / "new"
        # Postfix moves each message into new/ complete and never changes it there,
        # so the address of a file read once stays valid.
        self._original_to_by_name: Dict[str, Optional[str]] = {}

    def _find(self, recipient: str) -> Optional[Path]:
        try:
            names = sorted(os.listdir(self.new_directory))
        except FileNotFoundError:
            return None

        for name in names:
            if name not in self._original_to_by_name:
                try:
                    self._original_to_by_name[name] = read_original_to(self.new_directory / name)
                except FileNotFoundError:
                    continue
            original_to = self._original_to_by_name[name]
            if original_to is not None and original_to.lower() == recipient.lower():
                return self.new_directory / name
        return None

    def wait_for_message(self, recipient: str, timeout: float = DELIVERY_TIMEOUT_SECONDS) -> bytes:
        """Poll until a message for ``recipient`` arrives and return it without the Postfix lines."""
        return strip_postfix_headers(self.wait_for_stored_message(recipient, timeout))

    def wait_for_stored_message(self, recipient: str, timeout: float = DELIVERY_TIMEOUT_SECONDS) -> bytes:
        """Poll until a message for ``recipient`` arrives and return it as stored, Postfix lines included."""
        deadline = time.monotonic() + timeout
        while True:
            path = self._find(recipient)
            if path is not None:
                return path.read_bytes()
            if time.monotonic() >= deadline:
                pytest.fail(
                    "no message with X-Original-To: {} arrived in {} within {:.0f} s".format(
                        recipient, self.new_directory, timeout
                    )
                )
            time.sleep(0.1)


@pytest.fixture(scope="session")
def server_address() -> Tuple[str, int]:
    """Host and port of the test server, from the environment, without checking that it runs."""
    host = os.environ.get("MVSMTP_TEST_HOST", "127.0.0.1")
    port = int(os.environ.get("MVSMTP_TEST_PORT", "2525"))
    return host, port


@pytest.fixture(scope="session")
def smtp_server(server_address: Tuple[str, int]) -> Tuple[str, int]:
    """Host and port of the test server. Fails the test when nothing accepts connections there."""
    host, port = server_address
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as error:
        pytest.fail(
            "the SMTP test server at {}:{} is not reachable ({}). Start it with "
            "`tests/postfix/test-server.sh up` (needs root), or set MVSMTP_TEST_HOST and "
            "MVSMTP_TEST_PORT.".format(host, port, error),
            pytrace=False,
        )
    return host, port


@pytest.fixture(scope="session")
def maildir() -> Maildir:
    root = Path(os.environ.get("MVSMTP_TEST_MAILDIR", "/tmp/mvsmtp-postfix/maildir"))
    return Maildir(root)


@pytest.fixture
def free_port() -> int:
    """A loopback port that nothing listens on: bound once to get a free number, then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SecureServer(NamedTuple):
    """The TLS listeners of the test server, its CA and the test account."""

    host: str
    submission_port: int
    implicit_port: int
    ca_file: str
    user: str
    password: str


def _require_listener(host: str, port: int, variable: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as error:
        pytest.fail(
            "the test server does not accept connections at {}:{} ({}). Start it with "
            "`tests/postfix/test-server.sh up` (needs root), or set {}.".format(host, port, error, variable),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def secure_server(server_address: Tuple[str, int]) -> SecureServer:
    """The submission and implicit-TLS ports with the CA file. Fails the test when either is down."""
    host = server_address[0]
    submission_port = int(os.environ.get("MVSMTP_TEST_SUBMISSION_PORT", "2587"))
    implicit_port = int(os.environ.get("MVSMTP_TEST_IMPLICIT_PORT", "4465"))
    _require_listener(host, submission_port, "MVSMTP_TEST_SUBMISSION_PORT")
    _require_listener(host, implicit_port, "MVSMTP_TEST_IMPLICIT_PORT")

    ca_file = Path(os.environ.get("MVSMTP_TEST_STATE", "/tmp/mvsmtp-postfix")) / "ca.crt"
    if not ca_file.is_file():
        pytest.fail(
            "the test server's CA {} does not exist. Start the server with "
            "`tests/postfix/test-server.sh up`, or set MVSMTP_TEST_STATE.".format(ca_file),
            pytrace=False,
        )
    return SecureServer(host, submission_port, implicit_port, str(ca_file), "testuser", "testpass")
