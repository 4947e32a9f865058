"""End-to-end tests of python/mvsmtp.py through the real libmvsmtp and the Postfix test server.

Run with `python3 -m pytest tests/python` after `cargo build --release` and
`tests/postfix/test-server.sh up`. Each test sends to its own random recipient and
finds its delivery in the maildir by the X-Original-To: field.
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

import mvsmtp

SENDER = "py-sender@example.test"
HELO = "pytest.example.test"
DATE = "Mon, 01 Jan 2024 12:00:00 +0000"


def unique_address(domain: str = "example.test") -> str:
    """Return a new recipient address, so that each test finds only its own messages."""
    return "py-{}@{}".format(uuid.uuid4().hex, domain)


def header_lines(recipient: str, subject: str) -> list:
    """Return a complete header, so that Postfix has no reason to add or rewrite fields."""
    return [
        "From: Python Test <{}>".format(SENDER),
        "To: {}".format(recipient),
        "Subject: {}".format(subject),
        "Date: {}".format(DATE),
        "Message-ID: <{}@example.test>".format(uuid.uuid4().hex),
    ]


def message_text(recipient: str, subject: str, body_lines: list) -> str:
    """Return header, blank line and body lines, each ended by LF."""
    return "\n".join(header_lines(recipient, subject) + [""] + body_lines) + "\n"


def assert_invalid_argument_before_connecting(status: int) -> None:
    assert status == mvsmtp.SMTP_INVALID_ARGUMENT, mvsmtp.status_name(status)
    assert mvsmtp.last_error() != ""
    assert mvsmtp.last_transcript() == "", "the library connected despite invalid input"
    assert mvsmtp.last_reply_code() == 0


# Delivery and message content


def test_plain_message_delivered_exactly(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_text(
        recipient,
        "Plain message",
        [
            "First line of the text.",
            "",
            "  Indented line with trailing spaces   ",
            "Last line.",
        ],
    )

    status = mvsmtp.send(host, port, HELO, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert mvsmtp.last_reply_code() == 250
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_line_endings_and_dots_delivered_exactly(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    headers = header_lines(recipient, "Line endings and dots")
    # CRLF, bare LF and bare CR line endings, dot lines that need dot-stuffing, and no
    # final line ending.
    body = "\r\n".join(headers) + "\r\n\r\nCRLF line\r\nLF line\nCR line\rafter CR\n.\n..two dots\n.leading dot"
    expected_body_lines = ["CRLF line", "LF line", "CR line", "after CR", ".", "..two dots", ".leading dot"]
    expected = "\n".join(headers + [""] + expected_body_lines) + "\n"

    status = mvsmtp.send(host, port, HELO, SENDER, recipient, body)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == expected.encode("utf-8")


def test_large_message_delivered_exactly(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    # About 1.5 MB, so the body takes many socket writes. Every tenth line needs dot-stuffing.
    body_lines = []
    for number in range(20000):
        prefix = "." if number % 10 == 0 else ""
        body_lines.append("{}Line {:05d} of a large message, padded to a typical width.....".format(prefix, number))
    message = message_text(recipient, "Large message", body_lines)

    status = mvsmtp.send(host, port, HELO, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_utf8_body_delivered_exactly(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_text(recipient, "UTF-8 text", ["Grüße aus Köln, 東京 and €."])

    status = mvsmtp.send(host, port, HELO, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_all_arguments_as_bytes(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_text(recipient, "Bytes arguments", ["Sent with bytes arguments."])

    status = mvsmtp.send(
        host.encode(), port, HELO.encode(), SENDER.encode(), recipient.encode(), message.encode()
    )

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_default_helo_uses_host_name(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_text(recipient, "Default HELO", ["HELO argument was None."])

    status = mvsmtp.send(host, port, None, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    hello_lines = [
        line for line in mvsmtp.last_transcript().splitlines() if line.startswith(("C: EHLO ", "C: HELO "))
    ]
    assert hello_lines, mvsmtp.last_transcript()
    assert hello_lines[0].split(" ", 2)[2].strip() != ""
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_null_sender_delivered(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_text(recipient, "Null sender", ["Sent with the null sender."])

    status = mvsmtp.send(host, port, HELO, "", recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    # MAIL FROM may carry parameters such as SIZE= after the address.
    assert any(line.startswith("C: MAIL FROM:<> ") or line == "C: MAIL FROM:<>" for line in mvsmtp.last_transcript().splitlines())
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


# Recipient lists


@pytest.mark.parametrize(
    "separator",
    [mvsmtp.VALUE_MARK, "\uf8fd", ",", ";"],
    ids=["value-mark-byte", "value-mark-utf8", "comma", "semicolon"],
)
def test_recipients_separated_all_delivered(smtp_server, maildir, separator):
    host, port = smtp_server
    first, second = unique_address(), unique_address()
    message = message_text("{}, {}".format(first, second), "Two recipients", ["Sent to two recipients."])
    if isinstance(separator, bytes):
        to = first.encode() + separator + second.encode()
    else:
        to = first + separator + second

    status = mvsmtp.send(host, port, HELO, SENDER, to, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(first) == message.encode("utf-8")
    assert maildir.wait_for_message(second) == message.encode("utf-8")


def test_recipient_list_all_delivered(smtp_server, maildir):
    host, port = smtp_server
    recipients = [unique_address(), unique_address().encode(), unique_address()]
    names = [r.decode() if isinstance(r, bytes) else r for r in recipients]
    message = message_text(", ".join(names), "Recipient list", ["Sent to a Python list."])

    status = mvsmtp.send(host, port, HELO, SENDER, recipients, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    for name in names:
        assert maildir.wait_for_message(name) == message.encode("utf-8")


def test_display_name_recipient_delivered(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_text("Py Tester <{}>".format(recipient), "Display name", ["Sent to Name <addr>."])

    status = mvsmtp.send(host, port, HELO, SENDER, "Py Tester <{}>".format(recipient), message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert "C: RCPT TO:<{}>".format(recipient) in mvsmtp.last_transcript().splitlines()
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


# MultiValue attribute marks in the body


@pytest.mark.parametrize(
    "attribute_mark",
    [mvsmtp.ATTRIBUTE_MARK, "\uf8fe"],
    ids=["attribute-mark-byte", "attribute-mark-utf8"],
)
def test_attribute_marks_become_lines(smtp_server, maildir, attribute_mark):
    host, port = smtp_server
    recipient = unique_address()
    lines = header_lines(recipient, "Attribute marks") + ["", "Line one.", "Line two.", "", "Line four."]
    if isinstance(attribute_mark, bytes):
        body = attribute_mark.join(line.encode() for line in lines)
    else:
        body = attribute_mark.join(lines)

    status = mvsmtp.send(host, port, HELO, SENDER, recipient, body)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == ("\n".join(lines) + "\n").encode()


# Rejected recipients


def test_partial_when_one_recipient_rejected(smtp_server, maildir):
    host, port = smtp_server
    good = unique_address()
    message = message_text("reject@example.test, {}".format(good), "Partial", ["One recipient is rejected."])

    status = mvsmtp.send(host, port, HELO, SENDER, ["reject@example.test", good], message)

    assert status == mvsmtp.SMTP_PARTIAL, mvsmtp.status_name(status)
    error = mvsmtp.last_error()
    assert "reject@example.test" in error
    assert "550" in error
    assert mvsmtp.last_reply_code() == 550
    assert maildir.wait_for_message(good) == message.encode("utf-8")


def test_all_recipients_rejected(smtp_server):
    host, port = smtp_server
    message = message_text("reject@example.test", "All rejected", ["Nobody gets this."])

    status = mvsmtp.send(host, port, HELO, SENDER, "reject@example.test;reject@other.example", message)

    assert status == mvsmtp.SMTP_RECIPIENTS_REJECTED, mvsmtp.status_name(status)
    assert mvsmtp.last_reply_code() == 550
    assert "reject@" in mvsmtp.last_error()


def test_temporary_failure_rejected(smtp_server):
    host, port = smtp_server
    message = message_text("tempfail@example.test", "Temporary failure", ["Nobody gets this."])

    status = mvsmtp.send(host, port, HELO, SENDER, "tempfail@example.test", message)

    assert status == mvsmtp.SMTP_RECIPIENTS_REJECTED, mvsmtp.status_name(status)
    assert mvsmtp.last_reply_code() == 450
    assert "450" in mvsmtp.last_error()


# Invalid arguments, rejected before any connection


def test_header_injection_in_to_rejected(server_address):
    host, port = server_address

    status = mvsmtp.send(host, port, HELO, SENDER, "a@b.example>\r\nRCPT TO:<x@y.example>", "Subject: x\n\ny\n")

    assert_invalid_argument_before_connecting(status)


@pytest.mark.parametrize(
    "argument, value",
    [
        ("host", None),
        ("sender", None),
        ("to", None),
        ("body", None),
        ("host", "127.0.0.1\r\nQUIT"),
        ("helo", "client.example\r\nRSET"),
        ("sender", "a@b.example>\nRCPT TO:<x@y.example"),
        ("sender", "a@b.example\r"),
        ("to", "no-at-sign.example"),
        ("to", ""),
        ("to", " , ;"),
        ("port", -1),
        ("port", 65536),
    ],
)
def test_invalid_argument_rejected(server_address, argument, value):
    host, port = server_address
    arguments = {
        "host": host,
        "port": port,
        "helo": HELO,
        "sender": SENDER,
        "to": unique_address(),
        "body": "Subject: invalid\n\nNot sent.\n",
    }
    arguments[argument] = value

    status = mvsmtp.send(**arguments)

    assert_invalid_argument_before_connecting(status)


@pytest.mark.parametrize(
    "arguments, error_type",
    [
        (dict(port="2525"), TypeError),
        (dict(port=True), TypeError),
        (dict(port=2**32 + 25), ValueError),
        (dict(to=12345), TypeError),
        (dict(to=["a@b.example", None]), TypeError),
        (dict(body="Subject: x\n\nNUL \x00 inside\n"), ValueError),
        (dict(sender=b"a\x00@b.example"), ValueError),
    ],
    ids=["port-str", "port-bool", "port-too-large-for-c-int", "to-int", "to-list-with-none", "body-nul", "sender-nul"],
)
def test_wrapper_rejects_what_c_cannot_receive(server_address, arguments, error_type):
    host, port = server_address
    full_arguments = dict(host=host, port=port, helo=HELO, sender=SENDER, to=unique_address(), body="x\n")
    full_arguments.update(arguments)

    with pytest.raises(error_type):
        mvsmtp.send(**full_arguments)


# Options


@pytest.mark.parametrize(
    "name, value",
    [("timeout", "abc"), ("timeout", "0"), ("timeout", "3601"), ("timeout", None), ("nonsense", "1"), (None, "1")],
)
def test_set_option_invalid_rejected(name, value):
    assert mvsmtp.set_option(name, value) == mvsmtp.SMTP_INVALID_ARGUMENT
    assert mvsmtp.last_error() != ""


def test_set_option_timeout_accepted():
    try:
        assert mvsmtp.set_option("timeout", "10") == mvsmtp.SMTP_OK
        assert mvsmtp.last_error() == ""
        assert mvsmtp.set_option("timeout", 3600) == mvsmtp.SMTP_OK
    finally:
        assert mvsmtp.set_option("timeout", "") == mvsmtp.SMTP_OK


def test_timeout_when_server_never_greets():
    # The kernel completes the TCP handshake for a listening socket, but nothing ever
    # accepts the connection or sends the 220 greeting.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        silent_port = silent.getsockname()[1]
        try:
            assert mvsmtp.set_option("timeout", "1") == mvsmtp.SMTP_OK
            started = time.monotonic()

            status = mvsmtp.send("127.0.0.1", silent_port, HELO, SENDER, unique_address(), "x\n")

            elapsed = time.monotonic() - started
            # Read the error now, because the set_option call below replaces it.
            error = mvsmtp.last_error()
        finally:
            mvsmtp.set_option("timeout", "")

    assert status == mvsmtp.SMTP_TIMEOUT, mvsmtp.status_name(status)
    assert error != ""
    assert elapsed < 10, "a 1 s timeout took {:.1f} s".format(elapsed)


# Connection failures


def test_connect_failed_when_nothing_listens(free_port):
    status = mvsmtp.send("127.0.0.1", free_port, HELO, SENDER, unique_address(), "Subject: x\n\ny\n")

    assert status == mvsmtp.SMTP_CONNECT_FAILED, mvsmtp.status_name(status)
    assert mvsmtp.last_error() != ""
    assert mvsmtp.last_reply_code() == 0


# Per-call state: last error, reply code and transcript


def test_transcript_shows_commands_not_body(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    secret_text = "body-text-{}".format(uuid.uuid4().hex)
    message = message_text(recipient, "Transcript check", [secret_text])

    status = mvsmtp.send(host, port, HELO, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    transcript = mvsmtp.last_transcript()
    lines = transcript.splitlines()
    # Besides "C: " and "S: " lines, the transcript has "* " notes such as the address connected to.
    assert all(line.startswith(("C: ", "S: ", "* ")) for line in lines), transcript
    protocol_lines = [line for line in lines if not line.startswith("* ")]
    assert protocol_lines[0].startswith("S: 220"), transcript
    assert any(line.startswith("C: MAIL FROM:<{}>".format(SENDER)) for line in lines)
    assert "C: RCPT TO:<{}>".format(recipient) in lines
    # The test server offers CHUNKING, so the message goes with BDAT rather than DATA.
    assert any(re.fullmatch(r"C: BDAT \d+ LAST", line) for line in lines), transcript
    assert any(re.fullmatch(r"C: <message body, \d+ bytes>", line) for line in lines), transcript
    assert secret_text not in transcript
    assert "Transcript check" not in transcript
    maildir.wait_for_message(recipient)


def test_last_error_empty_after_success(smtp_server, maildir):
    host, port = smtp_server
    assert mvsmtp.send(host, port, HELO, SENDER, "no-at-sign", "x\n") == mvsmtp.SMTP_INVALID_ARGUMENT
    assert mvsmtp.last_error() != ""
    recipient = unique_address()
    message = message_text(recipient, "Error reset", ["The previous error must be cleared."])

    status = mvsmtp.send(host, port, HELO, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK
    assert mvsmtp.last_error() == ""
    assert mvsmtp.last_reply_code() == 250
    maildir.wait_for_message(recipient)


def test_last_error_buffer_and_text_agree(server_address):
    host, port = server_address
    assert mvsmtp.send(host, port, HELO, SENDER, "no-at-sign", "x\n") == mvsmtp.SMTP_INVALID_ARGUMENT
    library = mvsmtp.library

    full_length = library.smtp_last_error(None, 0)
    short_buffer = mvsmtp.ctypes.create_string_buffer(5)
    copied_length = library.smtp_last_error(short_buffer, len(short_buffer))
    text = library.smtp_last_error_text()

    assert full_length > 4
    assert copied_length == full_length
    assert short_buffer.raw[4:5] == b"\x00"
    assert short_buffer.value == text[:4]
    assert len(text) == full_length
    assert mvsmtp.last_error() == text.decode("utf-8")


def test_last_transcript_buffer_and_text_agree(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_text(recipient, "Transcript buffer", ["Check both transcript functions."])
    assert mvsmtp.send(host, port, HELO, SENDER, recipient, message) == mvsmtp.SMTP_OK
    library = mvsmtp.library

    length = library.smtp_last_transcript(None, 0)
    buffer = mvsmtp.ctypes.create_string_buffer(length + 1)
    copied_length = library.smtp_last_transcript(buffer, len(buffer))

    assert copied_length == length
    assert buffer.value == library.smtp_last_transcript_text()
    assert buffer.value.decode("utf-8") == mvsmtp.last_transcript()
    maildir.wait_for_message(recipient)


def test_threads_see_own_last_error(smtp_server, maildir):
    host, port = smtp_server
    rounds = 5
    delivered_to = []

    for _ in range(rounds):
        # Both sends finish before either thread reads its state, so a state shared
        # between threads would show the other thread's result.
        start = threading.Barrier(2)
        both_sent = threading.Barrier(2)
        results = {}
        recipient = unique_address()
        delivered_to.append(recipient)
        message = message_text(recipient, "Thread check", ["Sent from a worker thread."])

        def send_good():
            start.wait()
            status = mvsmtp.send(host, port, HELO, SENDER, recipient, message)
            both_sent.wait()
            results["good"] = (status, mvsmtp.last_error(), mvsmtp.last_reply_code(), mvsmtp.last_transcript())

        def send_bad():
            start.wait()
            status = mvsmtp.send(host, port, HELO, SENDER, "no-at-sign.example", "x\n")
            both_sent.wait()
            results["bad"] = (status, mvsmtp.last_error(), mvsmtp.last_reply_code(), mvsmtp.last_transcript())

        threads = [threading.Thread(target=send_good), threading.Thread(target=send_bad)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert all(not thread.is_alive() for thread in threads), "a sending thread hung"

        good_status, good_error, good_reply, good_transcript = results["good"]
        bad_status, bad_error, bad_reply, bad_transcript = results["bad"]
        assert good_status == mvsmtp.SMTP_OK, good_error
        assert good_error == ""
        assert good_reply == 250
        assert "C: MAIL FROM:<{}>".format(SENDER) in good_transcript
        assert bad_status == mvsmtp.SMTP_INVALID_ARGUMENT
        assert bad_error != ""
        assert bad_reply == 0
        assert bad_transcript == ""

    for recipient in delivered_to:
        maildir.wait_for_message(recipient)


# SmtpError and send_or_raise


def test_send_or_raise_raises_smtp_error(smtp_server):
    host, port = smtp_server

    with pytest.raises(mvsmtp.SmtpError) as raised:
        mvsmtp.send_or_raise(host, port, HELO, SENDER, "reject@example.test", "Subject: x\n\ny\n")

    error = raised.value
    assert error.status == mvsmtp.SMTP_RECIPIENTS_REJECTED
    assert error.status_name == "SMTP_RECIPIENTS_REJECTED"
    assert error.reply_code == 550
    assert "reject@example.test" in error.message
    assert "SMTP_RECIPIENTS_REJECTED" in str(error)


def test_send_or_raise_invalid_argument(server_address):
    host, port = server_address

    with pytest.raises(mvsmtp.SmtpError) as raised:
        mvsmtp.send_or_raise(host, port, HELO, None, unique_address(), "x\n")

    assert raised.value.status == mvsmtp.SMTP_INVALID_ARGUMENT
    assert raised.value.status_name == "SMTP_INVALID_ARGUMENT"
    assert raised.value.reply_code == 0
    assert raised.value.message != ""


def test_send_or_raise_partial_raises(smtp_server, maildir):
    host, port = smtp_server
    good = unique_address()

    with pytest.raises(mvsmtp.SmtpError) as raised:
        mvsmtp.send_or_raise(host, port, HELO, SENDER, [good, "reject@example.test"], "Subject: x\n\ny\n")

    assert raised.value.status == mvsmtp.SMTP_PARTIAL
    maildir.wait_for_message(good)


def test_send_or_raise_returns_none_on_success(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_text(recipient, "send_or_raise", ["Sent with send_or_raise."])

    assert mvsmtp.send_or_raise(host, port, HELO, SENDER, recipient, message) is None
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


# Version and status names


def test_version_is_semantic_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", mvsmtp.version())


def header_status_codes() -> dict:
    """Return the SMTP_* status #defines of include/mvsmtp.h as {name: code}."""
    header = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "mvsmtp.h")
    with open(header, encoding="utf-8") as text:
        return {name: int(code) for name, code in re.findall(r"^#define (SMTP_[A-Z_]+) (\d+)$", text.read(), re.MULTILINE)}


def test_status_names_match_constants():
    assert mvsmtp.status_name(5) == "SMTP_TIMEOUT"
    assert mvsmtp.status_name(18) == "SMTP_MESSAGE_TOO_LARGE"
    constant_names = [name for name in dir(mvsmtp) if name.startswith("SMTP_")]
    assert len(constant_names) == 20
    for name in constant_names:
        assert mvsmtp.status_name(getattr(mvsmtp, name)) == name


def test_status_constants_match_header():
    constants = {name: getattr(mvsmtp, name) for name in dir(mvsmtp) if name.startswith("SMTP_")}
    assert constants == header_status_codes()
    for name in constants:
        assert name in mvsmtp.__all__


@pytest.mark.parametrize("status", [-1, 19, 98, 100, 2**31 - 1, 2**40])
def test_status_name_unknown(status):
    assert mvsmtp.status_name(status) == "SMTP_UNKNOWN_STATUS"


# Loading the library


def run_import(environment_library: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, MVSMTP_LIBRARY=environment_library)
    python_directory = os.path.dirname(os.path.abspath(mvsmtp.__file__))
    return subprocess.run(
        [sys.executable, "-c", "import mvsmtp; print(mvsmtp.library_path)"],
        cwd=python_directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_library_from_environment_variable():
    result = run_import(mvsmtp.library_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == mvsmtp.library_path


def test_missing_library_error_names_path(tmp_path):
    missing = str(tmp_path / "libmvsmtp-missing.so")

    result = run_import(missing)

    assert result.returncode != 0
    assert "OSError" in result.stderr
    assert "MVSMTP_LIBRARY" in result.stderr
    assert missing in result.stderr
