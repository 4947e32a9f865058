"""Tests of mvsmtp_u2.py with plain Python against the Postfix test server of the repository.

Start the server with `bash tests/postfix/test-server.sh up` (needs root), build the
library with `cargo build --release`, then run `python3 -m pytest mvbasic/u2python`.
The arguments are given as U2 BASIC passes them after MVSMTP.SEND has replaced the
marks: str as with NLS, bytes as without it. U2 itself is not involved.
"""

import email
import email.policy
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPOSITORY_ROOT = HERE.parents[1]
sys.path.insert(0, str(REPOSITORY_ROOT / "python"))
sys.path.insert(0, str(HERE))

import mvsmtp_u2  # noqa: E402

MAILDIR = Path(os.environ.get("MVSMTP_TEST_MAILDIR", "/tmp/mvsmtp-postfix/maildir")) / "new"
SERVER = "host={}\nport={}".format(
    os.environ.get("MVSMTP_TEST_HOST", "127.0.0.1"), os.environ.get("MVSMTP_TEST_PORT", "2525")
)
DELIVERY_TIMEOUT_SECONDS = 10.0


def unique_address(tag):
    return "u2py-{}-{}@example.test".format(tag, uuid.uuid4().hex[:12])


def delivered(address):
    """Return the message that Postfix stored for ADDRESS, parsed, or fail after the timeout."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    expected_line = "x-original-to: {}".format(address).encode("ascii").lower()
    while time.monotonic() < deadline:
        for path in MAILDIR.iterdir():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                # Other test runs remove their own messages while this one looks.
                continue
            header = data.split(b"\n\n", 1)[0].lower()
            if expected_line in header.split(b"\n"):
                return email.message_from_bytes(data, policy=email.policy.default)
        time.sleep(0.2)
    pytest.fail("no message for {} arrived in {}".format(address, MAILDIR))


def status_of(result):
    status, _, error = result.partition(" ")
    return int(status), error


def test_send_str_arguments(tmp_path):
    first, second = unique_address("str-a"), unique_address("str-b")
    invoice = tmp_path / "invoice.pdf"
    invoice.write_bytes(b"%PDF-1.4 test")
    attachments = "{}\tInvoice 42.pdf\tapplication/pdf\n\tnotes.txt\ttext/plain\tfirst line\x0bsecond line".format(invoice)

    result = mvsmtp_u2.send(
        SERVER, "Billing <billing@example.test>", '"Smith, John" <{}>\n{}'.format(first, second),
        "Grüße 42", "Dear customer,\n\nyour invoice is attached.", attachments,
    )

    assert status_of(result) == (0, "")
    message = delivered(first)
    assert message["Subject"] == "Grüße 42"
    assert "Smith, John" in message["To"]
    assert second in message["To"]
    parts = list(message.iter_attachments())
    assert [part.get_filename() for part in parts] == ["Invoice 42.pdf", "notes.txt"]
    assert parts[0].get_content() == b"%PDF-1.4 test"
    assert parts[1].get_content().splitlines() == ["first line", "second line"]
    assert message.get_body(("plain",)).get_content().splitlines() == ["Dear customer,", "", "your invoice is attached."]


def test_send_bytes_in_charset():
    address = unique_address("latin1")
    options = (SERVER + "\ncharset=ISO-8859-1").encode("ascii")

    result = mvsmtp_u2.send(options, b"billing@example.test", address.encode("ascii"),
                            "Grüße".encode("latin-1"), "Größe: 3 m²".encode("latin-1"), b"")

    assert status_of(result) == (0, "")
    message = delivered(address)
    assert message["Subject"] == "Grüße"
    assert message.get_body(("plain",)).get_content().strip() == "Größe: 3 m²"


def test_send_str_encoded_to_charset():
    address = unique_address("charset")

    # The library reads ISO-8859-1 as windows-1252, which has the dash.
    result = mvsmtp_u2.send(SERVER + "\ncharset=ISO-8859-1", "billing@example.test", address, "Grüße – 5 €", "Größe", "")

    assert status_of(result) == (0, "")
    assert delivered(address)["Subject"] == "Grüße – 5 €"


def test_character_outside_charset_rejected():
    status, error = status_of(
        mvsmtp_u2.send(SERVER + "\ncharset=ISO-8859-1", "billing@example.test", unique_address("kanji"), "漢字", "text", "")
    )
    assert status == mvsmtp_u2.SMTP_INVALID_ARGUMENT
    assert "charset option" in error


def test_unknown_charset_rejected():
    status, error = status_of(
        mvsmtp_u2.send(SERVER + "\ncharset=no-such-charset", "billing@example.test", unique_address("nocs"), "s", "t", "")
    )
    assert status == mvsmtp_u2.SMTP_INVALID_ARGUMENT
    assert "no-such-charset" in error


def test_numeric_subject_sent_as_text():
    address = unique_address("number")

    result = mvsmtp_u2.send(SERVER, "billing@example.test", address, 2024, "text", None)

    assert status_of(result) == (0, "")
    assert delivered(address)["Subject"] == "2024"


def test_send_raw():
    address = unique_address("raw")
    message = "From: billing@example.test\nTo: {}\nSubject: raw from U2\n\n.line with a dot\nlast line".format(address)

    result = mvsmtp_u2.send_raw(SERVER, "billing@example.test", address, message)

    assert status_of(result) == (0, "")
    stored = delivered(address)
    assert stored["Subject"] == "raw from U2"
    assert stored.get_content().splitlines() == [".line with a dot", "last line"]


def test_rejected_recipient_status():
    status, error = status_of(
        mvsmtp_u2.send(SERVER, "billing@example.test", "reject@example.test", "s", "t", "")
    )
    assert status == 11
    assert "reject@example.test" in error


def test_missing_attachment_file():
    status, error = status_of(
        mvsmtp_u2.send(SERVER, "billing@example.test", unique_address("nofile"), "s", "t", "/nonexistent/invoice.pdf")
    )
    assert status == mvsmtp_u2.SMTP_INVALID_ARGUMENT
    assert "/nonexistent/invoice.pdf" in error


def test_library_not_found_reported():
    script = "import mvsmtp_u2; print(mvsmtp_u2.send('host=127.0.0.1', 'a@example.test', 'b@example.test', 's', 't', ''))"
    environment = dict(os.environ, MVSMTP_LIBRARY="/nonexistent/libmvsmtp.so")
    environment["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPOSITORY_ROOT / "python")])

    output = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)

    status, error = status_of(output.stdout.strip())
    assert status == mvsmtp_u2.SMTP_INTERNAL_ERROR
    assert "MVSMTP_LIBRARY" in error
