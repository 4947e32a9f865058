"""Tests of mvsmtp_u2.py with plain Python against the Postfix test server of the repository.

Start the server with `bash tests/postfix/test-server.sh up` (needs root), build the
library with `cargo build --release`, then run `python3 -m pytest mvbasic/u2python`.
The arguments are given as U2 BASIC passes them after MVSMTP.SEND has replaced the
marks: str as with NLS, bytes as without it. U2 itself is not involved.
"""

import email
import email.policy
import os
import socket
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


# Sessions, as MVSMTP.OPEN, MVSMTP.SESSION.SEND, MVSMTP.SESSION.MESSAGE and MVSMTP.CLOSE call them


def opened_session(options=SERVER):
    session_id, error = status_of(mvsmtp_u2.open_session(options))
    assert session_id > 0, error
    assert error == ""
    return session_id


def test_session_messages_delivered():
    first, second, cc, raw = (unique_address(tag) for tag in ("sess-a", "sess-b", "sess-cc", "sess-raw"))
    # BASIC passes the session id as text, with SESSION:"".
    session = str(opened_session())

    results = [
        mvsmtp_u2.session_message(session, "cc=" + cc, "billing@example.test", first, "Statement 1", "Line 1\nLine 2", ""),
        mvsmtp_u2.session_message(session, "", "billing@example.test", second, 2024, "Second.", "\tnote.txt\t\tone\x0btwo"),
        mvsmtp_u2.session_send(session, "billing@example.test", raw, "Subject: raw on a session\n\nRaw text."),
        mvsmtp_u2.close_session(session),
    ]

    assert [status_of(result) for result in results] == [(0, "")] * 4
    message = delivered(first)
    assert message["Subject"] == "Statement 1"
    assert message["Cc"] == cc
    assert message.get_body(("plain",)).get_content().splitlines() == ["Line 1", "Line 2"]
    assert delivered(cc)["Subject"] == "Statement 1"
    following = delivered(second)
    assert following["Subject"] == "2024"
    assert following["Cc"] is None
    assert [part.get_content().splitlines() for part in following.iter_attachments()] == [["one", "two"]]
    assert delivered(raw)["Subject"] == "raw on a session"


def test_session_open_failure_negative_status():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    session_id, error = status_of(mvsmtp_u2.open_session("host=127.0.0.1\nport={}\ntimeout=5".format(free_port)))

    assert session_id == -4
    assert str(free_port) in error


def test_session_open_unknown_charset_rejected():
    session_id, error = status_of(mvsmtp_u2.open_session(SERVER + "\ncharset=no-such-charset"))

    assert session_id == mvsmtp_u2.SMTP_INVALID_ARGUMENT
    assert "no-such-charset" in error


def test_session_charset_from_open():
    latin1, encoded, utf8 = (unique_address(tag) for tag in ("sess-latin1", "sess-encoded", "sess-utf8"))
    session = opened_session((SERVER + "\ncharset=ISO-8859-1").encode("ascii"))

    # Bytes in the session's charset, as a system without NLS passes them.
    latin1_result = mvsmtp_u2.session_message(session, b"", b"billing@example.test", latin1.encode("ascii"),
                                              "Grüße".encode("latin-1"), "Größe".encode("latin-1"), b"")
    # str, which the module encodes into the session's charset.
    encoded_result = mvsmtp_u2.session_message(session, "", "billing@example.test", encoded, "Grüße – 5 €", "Größe", "")
    # A message's own charset option overrides the session's.
    utf8_result = mvsmtp_u2.session_message(session, "charset=UTF-8", "billing@example.test", utf8, "漢字", "Größe", "")
    mvsmtp_u2.close_session(session)

    assert status_of(latin1_result) == (0, "")
    assert status_of(encoded_result) == (0, "")
    assert status_of(utf8_result) == (0, "")
    assert delivered(latin1)["Subject"] == "Grüße"
    assert delivered(encoded)["Subject"] == "Grüße – 5 €"
    assert delivered(utf8)["Subject"] == "漢字"


@pytest.mark.parametrize(
    "open_options, message_options, subject, fragment",
    [
        (SERVER + "\ncharset=ISO-8859-1", "", "漢字", "charset option"),
        (SERVER, "port=25", "s", "port"),
        (SERVER, "charset=no-such-charset", "s", "no-such-charset"),
    ],
    ids=["outside-open-charset", "connection-option", "unknown-charset"],
)
def test_session_message_rejected(open_options, message_options, subject, fragment):
    session = opened_session(open_options)

    status, error = status_of(
        mvsmtp_u2.session_message(session, message_options, "billing@example.test", unique_address("sess-bad"), subject, "t", "")
    )
    mvsmtp_u2.close_session(session)

    assert status == mvsmtp_u2.SMTP_INVALID_ARGUMENT
    assert fragment in error


def test_session_rejected_recipient_then_success():
    address = unique_address("sess-after")
    session = opened_session()

    rejected = mvsmtp_u2.session_send(session, "billing@example.test", "reject@example.test", "Subject: r\n\nr")
    accepted = mvsmtp_u2.session_send(session, "billing@example.test", address, "Subject: after\n\ntext")
    mvsmtp_u2.close_session(session)

    status, error = status_of(rejected)
    assert status == 11
    assert "reject@example.test" in error
    assert status_of(accepted) == (0, "")
    assert delivered(address)["Subject"] == "after"


@pytest.mark.parametrize("session", ["", "abc", "-3", b"x", None])
def test_session_id_not_a_number_rejected(session):
    status, error = status_of(mvsmtp_u2.session_send(session, "billing@example.test", "a@example.test", "t"))

    assert status == mvsmtp_u2.SMTP_INVALID_ARGUMENT
    assert "MVSMTP.OPEN" in error


def test_closed_session_rejected():
    session = opened_session()
    assert status_of(mvsmtp_u2.close_session(session)) == (0, "")

    for result in (
        mvsmtp_u2.session_send(session, "billing@example.test", "a@example.test", "t"),
        mvsmtp_u2.session_message(float(session), "", "billing@example.test", "a@example.test", "s", "t", ""),
        mvsmtp_u2.close_session(str(session).encode("ascii")),
    ):
        status, error = status_of(result)
        assert status == mvsmtp_u2.SMTP_INVALID_ARGUMENT
        assert "Unknown session {}".format(session) in error
