"""End-to-end tests of mvsmtp.send_message(): composed MIME messages through Postfix.

Each test sends to its own random recipient and reads the delivered message back from the
maildir, without the lines that Postfix prepends. Python's email package parses it, so the
checks see the message as a mail reader does. Where a test needs the exact bytes on the
wire or a SIZE limit that Postfix does not have, it sends to a scripted SMTP server on a
free loopback port instead.

Text comparisons: SMTP carries text as lines ended by CRLF, Postfix stores them with LF,
and the email package returns quoted-printable text with LF. So a delivered text equals
its input when both are the same after every CRLF becomes LF (see assert_same_text).
"""

import datetime
import email
import email.policy
import email.utils
import os
import socket
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import pytest

import mvsmtp
from conftest import read_original_to

SENDER = "py-compose@example.test"
HELO = "pytest.example.test"

# RFC 5322 section 2.1.1: a line is at most 998 octets, without its CRLF.
MAX_LINE_OCTETS = 998

# The largest attachment below is 10 MiB, about 13.7 MB in base64. The Postfix test server
# accepts up to 100 MiB (message_size_limit in tests/postfix/test-server.sh).
ATTACHMENT_SIZES = [0, 1, 1024, 1024 * 1024, 10 * 1024 * 1024]


def unique_address(domain: str = "example.test") -> str:
    """Return a new recipient address, so that each test finds only its own messages."""
    return "py-compose-{}@{}".format(uuid.uuid4().hex, domain)


@pytest.fixture
def options(smtp_server) -> dict:
    """Options that send to the Postfix test server. Tests add message options to a copy."""
    host, port = smtp_server
    return {"host": host, "port": port, "helo": HELO, "timeout": 60}


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def header_section(raw: bytes) -> bytes:
    """Return the header lines of a message, up to the first empty line."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in raw:
            return raw.split(separator, 1)[0]
    return raw


def raw_fields(raw: bytes, name: bytes) -> List[bytes]:
    """Return every field called ``name`` in a raw message, part headers included, unfolded."""
    fields = []
    current = None
    for line in raw.split(b"\n"):
        line = line.rstrip(b"\r")
        if current is not None and line[:1] in (b" ", b"\t"):
            current += b" " + line.strip()
            continue
        if current is not None:
            fields.append(current)
            current = None
        if line.lower().startswith(name.lower() + b":"):
            current = line
    if current is not None:
        fields.append(current)
    return fields


def assert_lines_within_limit(raw: bytes) -> None:
    for number, line in enumerate(raw.split(b"\n"), start=1):
        length = len(line.rstrip(b"\r"))
        assert length <= MAX_LINE_OCTETS, "line {} has {} octets: {!r}...".format(number, length, line[:80])


def receive(maildir, recipient: str) -> Tuple[bytes, EmailMessage]:
    """Wait for the message to ``recipient``, check its line lengths, and return it raw and parsed."""
    raw = maildir.wait_for_message(recipient)
    assert_lines_within_limit(raw)
    return raw, parse(raw)


def send_and_receive(
    maildir,
    options: dict,
    subject,
    body,
    attachments=None,
    sender=SENDER,
    recipient: Optional[str] = None,
) -> Tuple[bytes, EmailMessage]:
    """Send a composed message to a new recipient (or ``recipient``) and return it as delivered."""
    recipient = recipient or unique_address()
    status = mvsmtp.send_message(options, sender, recipient, subject, body, attachments)
    assert status == mvsmtp.SMTP_OK, "{}: {}".format(mvsmtp.status_name(status), mvsmtp.last_error())
    return receive(maildir, recipient)


def assert_same_text(delivered: str, original: str) -> None:
    """Assert that two texts are equal once every CRLF is LF: the line breaks may differ, the rest not."""
    assert "\r" not in delivered.replace("\r\n", "\n"), "bare CR in {!r}".format(delivered[:200])
    assert delivered.replace("\r\n", "\n") == original.replace("\r\n", "\n")


def attachments_of(message: EmailMessage) -> List[EmailMessage]:
    return list(message.iter_attachments())


def assert_rejected_before_connecting(status: int, *fragments: str) -> None:
    """Assert SMTP_INVALID_ARGUMENT, an error naming each fragment, and no connection made."""
    assert status == mvsmtp.SMTP_INVALID_ARGUMENT, "{}: {}".format(mvsmtp.status_name(status), mvsmtp.last_error())
    error = mvsmtp.last_error()
    for fragment in fragments:
        assert fragment in error
    assert mvsmtp.last_transcript() == "", "the library connected despite invalid input"


def assert_not_delivered(maildir, recipient: str, wait_seconds: float = 1.0) -> None:
    time.sleep(wait_seconds)
    for path in maildir.new_directory.iterdir():
        original_to = read_original_to(path)
        assert original_to is None or original_to.lower() != recipient.lower(), "delivered as {}".format(path)


def rcpt_addresses(transcript: str) -> List[str]:
    """Return the addresses of the RCPT TO commands in a transcript, in order."""
    addresses = []
    for line in transcript.splitlines():
        if line.upper().startswith("C: RCPT TO:<"):
            addresses.append(line.split("<", 1)[1].split(">", 1)[0].lower())
    return addresses


# Headers: encoded words, addresses, generated fields


@pytest.mark.parametrize(
    "subject",
    [
        "Facture n° 42 – été ✓",
        "請求書 第42号のご案内",
        "Ελληνικά, кириллица and emoji 🎉",
        "Résumé des décisions " * 15,
        'Re: [42] 100% "quoted" (done); a=b',
        "=?utf-8?q?x?= is plain text, not an encoded word",
    ],
    ids=["french", "japanese", "mixed-scripts", "long-non-ascii", "ascii-specials", "encoded-word-lookalike"],
)
def test_subject_decodes_to_original(options, maildir, subject):
    raw, message = send_and_receive(maildir, options, subject, "Subject test.\n")

    assert message["Subject"] == subject
    # Non-ASCII text travels as RFC 2047 encoded words, so the header stays 7-bit.
    assert header_section(raw).isascii(), header_section(raw).decode("utf-8", errors="replace")


def test_display_names_decode_to_original(options, maildir):
    recipient = unique_address()
    cc = unique_address()
    sender = "José Müller <{}>".format(SENDER)
    to = "山田 太郎 <{}>".format(recipient)
    options["cc"] = "Ωmega Ärger <{}>".format(cc)

    status = mvsmtp.send_message(options, sender, to, "Display names", "Names test.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    raw, message = receive(maildir, recipient)
    assert header_section(raw).isascii()
    assert message["From"].addresses[0].display_name == "José Müller"
    assert message["From"].addresses[0].addr_spec == SENDER
    assert message["To"].addresses[0].display_name == "山田 太郎"
    assert message["To"].addresses[0].addr_spec == recipient
    assert message["Cc"].addresses[0].display_name == "Ωmega Ärger"
    assert message["Cc"].addresses[0].addr_spec == cc


def test_generated_headers_present(options, maildir):
    before = datetime.datetime.now(datetime.timezone.utc)

    _, first = send_and_receive(maildir, options, "Generated headers 1", "First.\n")
    _, second = send_and_receive(maildir, options, "Generated headers 2", "Second.\n")

    after = datetime.datetime.now(datetime.timezone.utc)
    for message in (first, second):
        assert message["MIME-Version"] == "1.0"
        sent_at = email.utils.parsedate_to_datetime(str(message["Date"]))
        # The Date header has whole seconds, so allow one second on either side.
        assert before - datetime.timedelta(seconds=1) <= sent_at <= after + datetime.timedelta(seconds=1)
        message_id = str(message["Message-ID"]).strip()
        assert message_id.startswith("<"), message_id
        assert message_id.endswith("@example.test>"), message_id
    assert first["Message-ID"] != second["Message-ID"]


def test_message_id_uses_sender_domain(options, maildir):
    sender = "Billing <billing@invoices.example.net>"

    _, message = send_and_receive(maildir, options, "Message-ID domain", "Domain test.\n", sender=sender)

    assert str(message["Message-ID"]).strip().endswith("@invoices.example.net>"), message["Message-ID"]


def test_extra_header_added(options, maildir):
    options["header"] = "X-Invoice: 42"

    _, message = send_and_receive(maildir, options, "Extra header", "Header test.\n")

    assert message["X-Invoice"] == "42"


def test_several_extra_headers_added(options, maildir):
    options["header"] = ["X-Invoice: 42", "X-Customer: Zoë Ørsted", "X-Batch: night run"]

    raw, message = send_and_receive(maildir, options, "Extra headers", "Headers test.\n")

    assert message["X-Invoice"] == "42"
    assert message["X-Customer"] == "Zoë Ørsted"
    assert message["X-Batch"] == "night run"
    assert header_section(raw).isascii()


def test_extra_headers_from_option_lines(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    lines = ["host={}".format(host), "port={}".format(port), "header=X-First: 1", "header=X-Second: 2"]

    status = mvsmtp.send_message(lines, SENDER, recipient, "Header lines", "Headers test.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    _, message = receive(maildir, recipient)
    assert message["X-First"] == "1"
    assert message["X-Second"] == "2"


@pytest.mark.parametrize(
    "header",
    [
        "Subject: x",
        "subject: x",
        "From: other@example.test",
        "Bcc: hidden@example.test",
        "Message-ID: <x@example.test>",
    ],
)
def test_reserved_header_rejected(options, maildir, header):
    recipient = unique_address()
    options["header"] = header

    status = mvsmtp.send_message(options, SENDER, recipient, "Reserved header", "Not sent.\n")

    assert_rejected_before_connecting(status, header.split(":")[0])
    assert_not_delivered(maildir, recipient)


@pytest.mark.parametrize("header", ["No colon here", "Bad Name: x", ": no name"])
def test_malformed_header_rejected(options, header):
    options["header"] = header

    status = mvsmtp.send_message(options, SENDER, unique_address(), "Malformed header", "Not sent.\n")

    assert_rejected_before_connecting(status, "header")


# Text and HTML bodies


TEXT_LINES = [
    "Dear customer,",
    "",
    "  indented with trailing spaces   ",
    "\ttab at the start and the end\t",
    ".",
    ".leading dot",
    "..two dots",
    "From the start of a line",
    "Grüße aus Köln, 東京 and €.",
    "a = b =3D c =",
    "",
    "",
    "Last line.",
]


def test_text_body_round_trip(options, maildir):
    body = "\n".join(TEXT_LINES) + "\n"

    _, message = send_and_receive(maildir, options, "Text body", body)

    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    part = message.get_body(("plain",))
    assert part is not None
    assert_same_text(part.get_content(), body)


def test_text_body_with_crlf_round_trip(options, maildir):
    body = "\r\n".join(TEXT_LINES) + "\r\n"

    _, message = send_and_receive(maildir, options, "CRLF text body", body)

    assert_same_text(message.get_body(("plain",)).get_content(), body)


def test_text_body_as_bytes_round_trip(options, maildir):
    body = "\n".join(TEXT_LINES) + "\n"

    _, message = send_and_receive(maildir, options, b"Bytes body", body.encode("utf-8"))

    assert_same_text(message.get_body(("plain",)).get_content(), body)


def test_text_body_without_final_line_break(options, maildir):
    body = "One line without a line break at the end"

    _, message = send_and_receive(maildir, options, "No final line break", body)

    # The message data always ends with CRLF, so a one-part message may gain one line break.
    assert message.get_body(("plain",)).get_content() in (body, body + "\n")


def test_empty_text_body(options, maildir):
    _, message = send_and_receive(maildir, options, "Empty body", "")

    assert message.get_body(("plain",)).get_content().strip("\r\n") == ""


@pytest.mark.parametrize("mark", [b"\xfe", "\uf8fe".encode("utf-8")], ids=["byte-FE", "U+F8FE"])
def test_attribute_marks_become_lines(options, maildir, mark):
    body = b"line 1" + mark + b"line 2" + mark + b"line 3\n"

    _, message = send_and_receive(maildir, options, "Attribute marks", body)

    assert_same_text(message.get_body(("plain",)).get_content(), "line 1\nline 2\nline 3\n")


def test_text_and_html_file_alternative(options, maildir, tmp_path):
    text = "Invoice 42 is due on 1 March.\nMerci beaucoup, José.\n"
    html = (
        "<html><body>\n<p>Invoice <b>42</b> is due on 1 March.</p>\n"
        "<p>Merci beaucoup, José ✓</p>\n</body></html>\n"
    )
    html_path = tmp_path / "invoice.html"
    html_path.write_text(html, encoding="utf-8")
    options["html_file"] = str(html_path)

    _, message = send_and_receive(maildir, options, "Text and HTML", text)

    assert message.get_content_type() == "multipart/alternative"
    plain_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    assert plain_part is not None
    assert html_part is not None
    assert_same_text(plain_part.get_content(), text)
    assert_same_text(html_part.get_content(), html)
    # RFC 2046 section 5.1.4: the preferred alternative comes last.
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]


def test_text_html_and_attachment_nested(options, maildir, tmp_path):
    html = "<p>See the attached report.</p>\n"
    html_path = tmp_path / "body.html"
    html_path.write_text(html, encoding="utf-8")
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    options["html_file"] = str(html_path)

    _, message = send_and_receive(
        maildir, options, "Text, HTML and attachment", "See the attached report.\n", [str(report)]
    )

    assert message.get_content_type() == "multipart/mixed"
    assert [part.get_content_type() for part in message.iter_parts()] == ["multipart/alternative", "application/pdf"]
    assert_same_text(message.get_body(("plain",)).get_content(), "See the attached report.\n")
    assert_same_text(message.get_body(("html",)).get_content(), html)
    assert attachments_of(message)[0].get_payload(decode=True) == report.read_bytes()


def test_html_body_type(options, maildir):
    html = "<html><body>\n<h1>Résumé</h1>\n<p>Only HTML, 東京.</p>\n</body></html>\n"
    options["body_type"] = "html"

    _, message = send_and_receive(maildir, options, "HTML body", html)

    # body_type=html makes the body argument the HTML part. The library adds no text
    # alternative of its own.
    assert message.get_content_type() == "text/html"
    assert message.get_content_charset() == "utf-8"
    assert_same_text(message.get_body(("html",)).get_content(), html)


def test_html_file_with_empty_text_body(options, maildir, tmp_path):
    html = "<p>HTML from a file only.</p>\n"
    html_path = tmp_path / "only.html"
    html_path.write_text(html, encoding="utf-8")
    options["html_file"] = str(html_path)

    _, message = send_and_receive(maildir, options, "HTML file only", "")

    assert message.get_content_type() == "text/html"
    assert_same_text(message.get_body(("html",)).get_content(), html)


def test_html_twice_rejected(options, tmp_path):
    html_path = tmp_path / "twice.html"
    html_path.write_text("<p>x</p>\n", encoding="utf-8")
    options["html_file"] = str(html_path)
    options["body_type"] = "html"

    status = mvsmtp.send_message(options, SENDER, unique_address(), "HTML twice", "<p>y</p>\n")

    assert_rejected_before_connecting(status, "html_file")


def test_missing_html_file_rejected(options, tmp_path):
    missing = str(tmp_path / "missing.html")
    options["html_file"] = missing

    status = mvsmtp.send_message(options, SENDER, unique_address(), "Missing HTML", "Text.\n")

    assert_rejected_before_connecting(status, missing)


def test_invalid_body_type_rejected(options):
    options["body_type"] = "markdown"

    status = mvsmtp.send_message(options, SENDER, unique_address(), "Body type", "Text.\n")

    assert_rejected_before_connecting(status, "body_type")


def test_long_lines_within_limit(options, maildir, tmp_path):
    ascii_line = "".join(chr(ord("a") + index % 26) for index in range(5000))
    spaced_line = " ".join(["word"] * 1200)
    non_ascii_line = "Grüße, 東京 – " * 400
    body = "Short line.\n{}\n{}\n{}\nEnd.\n".format(ascii_line, spaced_line, non_ascii_line)
    subject = "Très long sujet " * 40
    attachment = tmp_path / "data.bin"
    attachment.write_bytes(os.urandom(4096))
    long_name = "Rapport annuel détaillé " * 12 + ".pdf"

    # receive() checks that no line of the delivered message exceeds 998 octets.
    raw, message = send_and_receive(maildir, options, subject, body, [(str(attachment), long_name)])

    assert max(len(line) for line in raw.split(b"\n")) <= MAX_LINE_OCTETS
    assert_same_text(message.get_body(("plain",)).get_content(), body)
    assert message["Subject"] == subject
    assert attachments_of(message)[0].get_filename() == long_name


# Attachments


@pytest.mark.parametrize("size", ATTACHMENT_SIZES, ids=lambda size: "{}-bytes".format(size))
def test_binary_attachment_round_trip(options, maildir, tmp_path, size):
    content = os.urandom(size)
    path = tmp_path / "random-{}.bin".format(size)
    path.write_bytes(content)

    _, message = send_and_receive(maildir, options, "Attachment of {} bytes".format(size), "Attached.\n", [str(path)])

    parts = attachments_of(message)
    assert len(parts) == 1
    assert parts[0].get_filename() == path.name
    assert parts[0].get_content_type() == "application/octet-stream"
    assert parts[0].get_payload(decode=True) == content
    assert_same_text(message.get_body(("plain",)).get_content(), "Attached.\n")


@pytest.mark.parametrize(
    "file_name, content_type",
    [
        ("report.pdf", "application/pdf"),
        ("photo.jpg", "image/jpeg"),
        ("archive.zip", "application/zip"),
        ("table.csv", "text/csv"),
        ("no-extension", "application/octet-stream"),
    ],
)
def test_attachment_type_guessed_from_name(options, maildir, tmp_path, file_name, content_type):
    content = b"content of " + file_name.encode("ascii") + b"\r\n"
    path = tmp_path / file_name
    path.write_bytes(content)

    _, message = send_and_receive(maildir, options, "Guessed type", "Attached.\n", [str(path)])

    part = attachments_of(message)[0]
    assert part.get_content_type() == content_type
    assert part.get_filename() == file_name
    if part.get_content_maintype() == "text":
        # Text may travel as 7bit lines, which Postfix stores with LF.
        assert part.get_payload(decode=True).replace(b"\r\n", b"\n") == content.replace(b"\r\n", b"\n")
    else:
        assert part.get_payload(decode=True) == content


def test_attachment_name_and_type_given(options, maildir, tmp_path):
    first = tmp_path / "export-0001.dat"
    first.write_bytes(os.urandom(300))
    second = tmp_path / "export-0002.dat"
    second.write_bytes(os.urandom(300))
    attachments = [
        (str(first), "Invoice 42.pdf", "application/pdf"),
        {"path": str(second), "name": "ledger.xlsx", "type": "application/vnd.ms-excel"},
    ]

    _, message = send_and_receive(maildir, options, "Given names and types", "Attached.\n", attachments)

    parts = attachments_of(message)
    assert [part.get_filename() for part in parts] == ["Invoice 42.pdf", "ledger.xlsx"]
    assert [part.get_content_type() for part in parts] == ["application/pdf", "application/vnd.ms-excel"]
    assert parts[0].get_payload(decode=True) == first.read_bytes()
    assert parts[1].get_payload(decode=True) == second.read_bytes()


def test_attachment_name_only_guesses_type(options, maildir, tmp_path):
    path = tmp_path / "export.dat"
    path.write_bytes(b"%PDF-1.4\n")

    _, message = send_and_receive(maildir, options, "Name only", "Attached.\n", [(str(path), "statement.pdf")])

    part = attachments_of(message)[0]
    assert part.get_filename() == "statement.pdf"
    assert part.get_content_type() == "application/pdf"


def test_attachment_path_forms(options, maildir, tmp_path):
    contents = [os.urandom(100) for _ in range(4)]
    paths = [tmp_path / "form-{}.bin".format(index) for index in range(4)]
    for path, content in zip(paths, contents):
        path.write_bytes(content)
    # str, bytes, os.PathLike, and a one-item tuple.
    attachments = [str(paths[0]), bytes(paths[1]), paths[2], (str(paths[3]),)]

    _, message = send_and_receive(maildir, options, "Path forms", "Attached.\n", attachments)

    parts = attachments_of(message)
    assert [part.get_filename() for part in parts] == [path.name for path in paths]
    assert [part.get_payload(decode=True) for part in parts] == contents


def test_non_ascii_file_name_round_trip(options, maildir, tmp_path):
    path = tmp_path / "Résumé 2026.pdf"
    content = os.urandom(2048)
    path.write_bytes(content)
    other = tmp_path / "scan.bin"
    other.write_bytes(content)

    raw, message = send_and_receive(
        maildir, options, "Non-ASCII file names", "Attached.\n", [str(path), (str(other), "請求書 第42号.pdf")]
    )

    parts = attachments_of(message)
    assert [part.get_filename() for part in parts] == ["Résumé 2026.pdf", "請求書 第42号.pdf"]
    assert [part.get_content_type() for part in parts] == ["application/pdf", "application/pdf"]
    assert parts[0].get_payload(decode=True) == content
    # RFC 2231 parameter encoding (filename*=), not RFC 2047 encoded words, which RFC 2047
    # section 5 forbids inside parameters.
    dispositions = raw_fields(raw, b"Content-Disposition")
    assert len(dispositions) == 2
    for disposition in dispositions:
        assert b"filename*" in disposition, disposition
        assert b"=?" not in disposition, disposition
        assert disposition.isascii(), disposition


def test_in_memory_text_attachment(options, maildir):
    attachments = [{"data": "a,b\n1,2\n", "name": "x.csv"}]

    _, message = send_and_receive(maildir, options, "In-memory attachment", "Attached.\n", attachments)

    part = attachments_of(message)[0]
    assert part.get_filename() == "x.csv"
    assert part.get_content_type() == "text/csv"
    # The library sends the LF line breaks as CRLF, the canonical form of text (RFC 2046
    # section 4.1.1); test_wire_format checks those bytes. Postfix stores LF, so
    # a 7bit or quoted-printable part comes back with LF and a base64 part with CRLF.
    assert_same_text(part.get_content(), "a,b\n1,2\n")


def test_in_memory_crlf_same_as_lf(options, maildir):
    attachments = [{"data": "a,b\r\n1,2\r\n", "name": "crlf.csv"}, {"data": b"a,b\n1,2\n", "name": "lf.csv"}]

    _, message = send_and_receive(maildir, options, "CRLF and LF data", "Attached.\n", attachments)

    first, second = attachments_of(message)
    assert first.get_payload(decode=True) == second.get_payload(decode=True)
    assert_same_text(first.get_content(), "a,b\n1,2\n")


def test_in_memory_attachment_type_given(options, maildir):
    attachments = [{"data": "<root>\n  <item>1</item>\n</root>\n", "name": "order.xml", "type": "application/xml"}]

    _, message = send_and_receive(maildir, options, "In-memory XML", "Attached.\n", attachments)

    part = attachments_of(message)[0]
    assert part.get_content_type() == "application/xml"
    assert part.get_payload(decode=True).replace(b"\r\n", b"\n") == b"<root>\n  <item>1</item>\n</root>\n"


def test_in_memory_attachment_default_name(options, maildir):
    _, message = send_and_receive(maildir, options, "Unnamed data", "Attached.\n", [{"data": "note\n"}])

    part = attachments_of(message)[0]
    assert part.get_filename() == "attachment-1.txt"
    assert part.get_content_type() == "text/plain"


def test_in_memory_empty_data(options, maildir):
    _, message = send_and_receive(maildir, options, "Empty data", "Attached.\n", [{"data": "", "name": "empty.txt"}])

    part = attachments_of(message)[0]
    assert part.get_filename() == "empty.txt"
    assert part.get_payload(decode=True) == b""


def test_in_memory_non_ascii_text_labelled(options, maildir):
    data = "Stadt;Land\nZürich;Schweiz\nGenève;Suisse\n"

    _, message = send_and_receive(
        maildir, options, "Non-ASCII data", "Attached.\n", [{"data": data, "name": "städte.csv"}]
    )

    part = attachments_of(message)[0]
    assert part.get_filename() == "städte.csv"
    # The module sends str data as UTF-8. Without a charset parameter a reader must take
    # a text part as US-ASCII (RFC 2046 section 4.1.2) and garbles the umlauts.
    assert part.get_content_charset() == "utf-8", part["Content-Type"]
    assert_same_text(part.get_content(), data)


def test_missing_attachment_rejected(options, maildir, tmp_path):
    recipient = unique_address()
    present = tmp_path / "present.pdf"
    present.write_bytes(b"%PDF-1.4\n")
    missing = str(tmp_path / "missing invoice.pdf")

    status = mvsmtp.send_message(options, SENDER, recipient, "Missing file", "Not sent.\n", [str(present), missing])

    assert_rejected_before_connecting(status, missing, "attachment 2")
    assert_not_delivered(maildir, recipient)


def test_invalid_content_type_rejected(options, tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"x")
    attachments = [(str(path), None, "not a type")]

    status = mvsmtp.send_message(options, SENDER, unique_address(), "Bad type", "Text.\n", attachments)

    assert_rejected_before_connecting(status, "not a type")


def test_attachment_directory_rejected(options, tmp_path):
    status = mvsmtp.send_message(options, SENDER, unique_address(), "Directory", "Text.\n", [str(tmp_path)])

    assert_rejected_before_connecting(status, str(tmp_path))


# Recipients: To, Cc, Bcc and Reply-To


def test_bcc_delivered_but_hidden(options, maildir):
    recipient = unique_address()
    hidden = unique_address()
    options["bcc"] = "Hidden Person <{}>".format(hidden)

    status = mvsmtp.send_message(options, SENDER, recipient, "Bcc", "Bcc test.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert rcpt_addresses(mvsmtp.last_transcript()) == [recipient, hidden]
    for address in (recipient, hidden):
        raw, message = receive(maildir, address)
        assert "Bcc" not in message
        assert hidden.encode("ascii") not in header_section(raw).lower()
        assert b"hidden person" not in header_section(raw).lower()


def test_bcc_only_delivered(options, maildir):
    hidden = unique_address()
    options["bcc"] = hidden

    status = mvsmtp.send_message(options, SENDER, "", "Bcc only", "Bcc only test.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    raw, message = receive(maildir, hidden)
    assert "Bcc" not in message
    assert hidden.encode("ascii") not in header_section(raw).lower()


def test_cc_header_and_delivery(options, maildir):
    recipient = unique_address()
    copy = unique_address()
    options["cc"] = "Copy Person <{}>".format(copy)

    status = mvsmtp.send_message(options, SENDER, recipient, "Cc", "Cc test.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    for address in (recipient, copy):
        _, message = receive(maildir, address)
        cc_addresses = message["Cc"].addresses
        assert [entry.addr_spec for entry in cc_addresses] == [copy]
        assert cc_addresses[0].display_name == "Copy Person"
        assert [entry.addr_spec for entry in message["To"].addresses] == [recipient]


def test_cc_list_option(options, maildir):
    recipient = unique_address()
    copies = [unique_address(), unique_address()]
    options["cc"] = copies

    status = mvsmtp.send_message(options, SENDER, recipient, "Cc list", "Cc list test.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    for address in copies:
        _, message = receive(maildir, address)
        assert [entry.addr_spec for entry in message["Cc"].addresses] == copies


def test_cc_separated_by_value_mark(options, maildir):
    recipient = unique_address()
    copies = [unique_address(), unique_address()]
    options["cc"] = mvsmtp.VALUE_MARK.join(address.encode("ascii") for address in copies)

    status = mvsmtp.send_message(options, SENDER, recipient, "Cc value marks", "Cc test.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    _, message = receive(maildir, copies[1])
    assert [entry.addr_spec for entry in message["Cc"].addresses] == copies


def test_to_list_and_display_names(options, maildir):
    recipients = [unique_address(), unique_address()]
    to = ["First Person <{}>".format(recipients[0]), "Zweite Persön <{}>".format(recipients[1])]

    status = mvsmtp.send_message(options, SENDER, to, "Two recipients", "To test.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    _, message = receive(maildir, recipients[1])
    to_header = message["To"].addresses
    assert [entry.addr_spec for entry in to_header] == recipients
    assert [entry.display_name for entry in to_header] == ["First Person", "Zweite Persön"]
    receive(maildir, recipients[0])


def test_reply_to_header(options, maildir):
    options["reply_to"] = "Accounts Receivable <ar@example.test>"

    _, message = send_and_receive(maildir, options, "Reply-To", "Reply-To test.\n")

    reply_to = message["Reply-To"].addresses
    assert [entry.addr_spec for entry in reply_to] == ["ar@example.test"]
    assert reply_to[0].display_name == "Accounts Receivable"


def test_repeated_recipient_sent_once(options, maildir):
    recipient = unique_address()
    options["cc"] = "Same Person <{}>".format(recipient)
    options["bcc"] = recipient

    status = mvsmtp.send_message(options, SENDER, recipient, "Repeated recipient", "Once.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    addresses = rcpt_addresses(mvsmtp.last_transcript())
    assert addresses.count(recipient) == 1, mvsmtp.last_transcript()
    receive(maildir, recipient)


def test_repeated_recipient_domain_case_sent_once(options, maildir):
    recipient = unique_address()
    # Domain names are case-insensitive (RFC 5321 section 2.4), local parts are not.
    options["bcc"] = recipient.replace("@example.test", "@EXAMPLE.test")

    status = mvsmtp.send_message(options, SENDER, recipient, "Repeated recipient", "Once.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    addresses = rcpt_addresses(mvsmtp.last_transcript())
    assert addresses.count(recipient) == 1, mvsmtp.last_transcript()
    receive(maildir, recipient)


def test_partial_when_cc_rejected(options, maildir):
    recipient = unique_address()
    options["cc"] = "reject@example.test"

    status = mvsmtp.send_message(options, SENDER, recipient, "Partial", "Partial test.\n")

    assert status == mvsmtp.SMTP_PARTIAL, mvsmtp.status_name(status)
    assert "reject@example.test" in mvsmtp.last_error()
    receive(maildir, recipient)


def test_no_recipient_rejected(options):
    status = mvsmtp.send_message(options, SENDER, "", "Nobody", "Text.\n")

    assert_rejected_before_connecting(status, "recipient")


@pytest.mark.parametrize("sender", ["", "no-at-sign", "Name <broken"])
def test_invalid_sender_rejected(options, sender):
    status = mvsmtp.send_message(options, sender, unique_address(), "Bad sender", "Text.\n")

    assert_rejected_before_connecting(status, "sender")


def test_subject_with_line_break_rejected(options):
    status = mvsmtp.send_message(options, SENDER, unique_address(), "First\r\nBcc: x@example.test", "Text.\n")

    assert_rejected_before_connecting(status, "subject")


# Character sets


LATIN1_SUBJECT = b"Caf\xe9 cr\xe8me"
LATIN1_BODY = b"Cr\xe8me br\xfbl\xe9e \xe0 la fran\xe7aise\n\xc0 bient\xf4t, No\xebl\n"


def test_latin1_arguments_decoded(options, maildir):
    recipient = unique_address()
    options["charset"] = "ISO-8859-1"
    sender = b"Jos\xe9 Garc\xeda <" + SENDER.encode("ascii") + b">"

    status = mvsmtp.send_message(options, sender, recipient.encode("ascii"), LATIN1_SUBJECT, LATIN1_BODY)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    raw, message = receive(maildir, recipient)
    assert message["Subject"] == "Café crème"
    assert message["From"].addresses[0].display_name == "José García"
    # The library converts to UTF-8 and labels the part so.
    part = message.get_body(("plain",))
    assert part.get_content_charset() == "utf-8"
    assert_same_text(part.get_content(), "Crème brûlée à la française\nÀ bientôt, Noël\n")
    assert header_section(raw).isascii()


def test_latin1_html_file_decoded(options, maildir, tmp_path):
    html_path = tmp_path / "latin1.html"
    html_path.write_bytes(b"<p>Cr\xe8me br\xfbl\xe9e</p>\n")
    options["charset"] = "ISO-8859-1"
    options["html_file"] = str(html_path)

    _, message = send_and_receive(maildir, options, LATIN1_SUBJECT, LATIN1_BODY)

    html_part = message.get_body(("html",))
    assert html_part.get_content_charset() == "utf-8"
    assert_same_text(html_part.get_content(), "<p>Crème brûlée</p>\n")


def test_latin1_without_charset_rejected(options, maildir):
    recipient = unique_address()

    status = mvsmtp.send_message(options, SENDER, recipient, LATIN1_SUBJECT, LATIN1_BODY)

    assert_rejected_before_connecting(status, "charset")
    assert_not_delivered(maildir, recipient)


def test_latin1_body_without_charset_rejected(options):
    status = mvsmtp.send_message(options, SENDER, unique_address(), "ASCII subject", LATIN1_BODY)

    assert_rejected_before_connecting(status, "charset", "body")


def test_unknown_charset_rejected(options):
    options["charset"] = "klingon"

    status = mvsmtp.send_message(options, SENDER, unique_address(), "Charset", "Text.\n")

    assert_rejected_before_connecting(status, "klingon")


# The bytes on the wire, seen by a scripted server


class ScriptedServer:
    """SMTP server on a free loopback port that serves one client and records what it sends.

    It greets, replies to EHLO with the given extension lines, accepts every MAIL, RCPT and
    DATA, and stores the commands and the message data with dot-stuffing undone.
    """

    def __init__(self, extensions: Sequence[str]) -> None:
        self.extensions = list(extensions)
        self.commands: List[str] = []
        self.data = b""
        self.error: Optional[BaseException] = None
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.settimeout(30)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exception) -> None:
        self._thread.join(timeout=30)
        self._listener.close()

    @property
    def verbs(self) -> List[str]:
        return [command.split(" ", 1)[0].upper() for command in self.commands]

    def _serve(self) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError as error:
            self.error = error
            return
        with connection:
            connection.settimeout(30)
            try:
                self._converse(connection, connection.makefile("rb"))
            except OSError as error:
                self.error = error

    def _converse(self, connection: socket.socket, reader) -> None:
        def reply(*lines: str) -> None:
            for index, line in enumerate(lines):
                separator = " " if index == len(lines) - 1 else "-"
                connection.sendall("{}{}{}\r\n".format(line[:3], separator, line[4:]).encode("ascii"))

        reply("220 scripted.example.test ESMTP")
        while True:
            line = reader.readline()
            if not line:
                return
            command = line.rstrip(b"\r\n").decode("ascii", errors="replace")
            self.commands.append(command)
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                reply("250 scripted.example.test", *["250 " + extension for extension in self.extensions])
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                reply("250 2.0.0 OK")
            elif verb == "DATA":
                reply("354 End data with <CR><LF>.<CR><LF>")
                self.data = self._read_data(reader)
                reply("250 2.0.0 Queued")
            elif verb == "QUIT":
                reply("221 2.0.0 Bye")
                return
            else:
                reply("502 5.5.1 Command not implemented")

    @staticmethod
    def _read_data(reader) -> bytes:
        lines = []
        while True:
            line = reader.readline()
            if line in (b".\r\n", b""):
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b".") else line)


def scripted_options(server: ScriptedServer) -> dict:
    return {"host": "127.0.0.1", "port": server.port, "helo": HELO, "timeout": 10}


def test_message_too_large_not_sent(tmp_path):
    attachment = tmp_path / "five-kilobytes.bin"
    attachment.write_bytes(os.urandom(5 * 1024))

    with ScriptedServer(["SIZE 1000", "8BITMIME"]) as server:
        status = mvsmtp.send_message(
            scripted_options(server), SENDER, unique_address(), "Too large", "Attached.\n", [str(attachment)]
        )

    assert status == mvsmtp.SMTP_MESSAGE_TOO_LARGE, "{}: {}".format(mvsmtp.status_name(status), mvsmtp.last_error())
    assert "1000" in mvsmtp.last_error()
    assert server.error is None, server.error
    assert server.verbs == ["EHLO", "QUIT"], server.commands
    assert server.data == b""


def test_size_announced_in_mail_from():
    with ScriptedServer(["SIZE 1000000", "8BITMIME"]) as server:
        status = mvsmtp.send_message(scripted_options(server), SENDER, unique_address(), "Size", "Small.\n")

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert server.error is None, server.error
    mail_commands = [command for command in server.commands if command.upper().startswith("MAIL FROM:")]
    assert len(mail_commands) == 1
    size_parameters = [word for word in mail_commands[0].split() if word.upper().startswith("SIZE=")]
    assert len(size_parameters) == 1, mail_commands[0]
    announced = int(size_parameters[0].split("=", 1)[1])
    # RFC 1870 counts the message with its CRLFs, and dot-stuffing may add a few octets.
    assert len(server.data) <= announced <= len(server.data) + 100, (announced, len(server.data))


def test_wire_format(tmp_path):
    recipient = unique_address()
    long_line = "x" * 5000
    body = "Short line.\n{}\nGrüße aus Köln – {}\n".format(long_line, "é" * 3000)
    binary = tmp_path / "binary.bin"
    binary_content = os.urandom(10000)
    binary.write_bytes(binary_content)
    attachments = [{"data": "a,b\n1,2\n", "name": "x.csv"}, str(binary)]

    with ScriptedServer(["8BITMIME"]) as server:
        status = mvsmtp.send_message(scripted_options(server), SENDER, recipient, "Wire format", body, attachments)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert server.error is None, server.error
    data = server.data
    assert data.endswith(b"\r\n")
    # Every line ends with CRLF: no bare CR or LF anywhere.
    assert data.count(b"\n") == data.count(b"\r\n")
    assert data.count(b"\r") == data.count(b"\r\n")
    for line in data.split(b"\r\n"):
        assert len(line) <= MAX_LINE_OCTETS, line[:80]

    message = parse(data)
    assert_same_text(message.get_body(("plain",)).get_content(), body)
    csv_part, binary_part = attachments_of(message)
    # On the wire, text content has CRLF line breaks, the canonical form of RFC 2046.
    assert csv_part.get_payload(decode=True) == b"a,b\r\n1,2\r\n"
    assert binary_part.get_payload(decode=True) == binary_content


@pytest.mark.parametrize(
    "body",
    ["東京と大阪\n第二行\n" * 3, "Crème brûlée à la française\nÀ bientôt\n", "plain\nascii\n"],
    ids=["japanese", "french", "ascii"],
)
def test_text_parts_canonical_on_wire(body):
    with ScriptedServer(["8BITMIME"]) as server:
        status = mvsmtp.send_message(scripted_options(server), SENDER, unique_address(), "Canonical text", body)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    message = parse(server.data)
    decoded = message.get_body(("plain",)).get_payload(decode=True)
    # RFC 2046 section 4.1.1: text has CRLF line breaks in canonical form, and RFC 2045
    # section 6.8 requires that form before base64, which carries the bytes unchanged.
    assert decoded.count(b"\n") == decoded.count(b"\r\n"), (message["Content-Transfer-Encoding"], decoded[:80])
    assert decoded.replace(b"\r\n", b"\n") == body.encode("utf-8")


# Checks in the Python module before the library is called


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"binary\x00data", "NUL"),
        (b"a\xfeb", "attribute mark"),
        (b"a\xfdb", "value mark"),
        (b"a\xfcb", "subvalue mark"),
        ("a\uf8feb", "attribute mark"),
        ("a\uf8fdb", "value mark"),
        ("a\uf8fcb", "subvalue mark"),
        ("old Mac\rline break", "carriage return"),
    ],
)
def test_wrapper_rejects_attachment_data(server_address, data, fragment):
    host, port = server_address
    attachments = [{"data": data, "name": "data.bin"}]

    with pytest.raises(ValueError) as raised:
        mvsmtp.send_message({"host": host, "port": port}, SENDER, unique_address(), "x", "x\n", attachments)

    assert fragment in str(raised.value)
    assert "file" in str(raised.value)


@pytest.mark.parametrize(
    "attachment, fragment",
    [
        ("/tmp/a\nb.pdf", "line feed"),
        (("/tmp/a.pdf", "name\r\nBcc: x"), "carriage return"),
        (("/tmp/a.pdf", None, b"text/plain\xfe"), "attribute mark"),
        ((b"/tmp/a\xfdb.pdf",), "value mark"),
        ({"data": "x", "name": "a\uf8fdb"}, "value mark"),
        ("", "empty"),
        ("   ", "empty"),
        ({"path": "/tmp/a.pdf", "data": "x"}, "exactly one"),
        ({"name": "x.txt"}, "exactly one"),
        ({"path": "/tmp/a.pdf", "filename": "x"}, "filename"),
        (("/tmp/a.pdf", "a", "b", "c"), "tuple of 4"),
        ((), "tuple of 0"),
    ],
)
def test_wrapper_rejects_attachment_fields(server_address, attachment, fragment):
    host, port = server_address

    with pytest.raises(ValueError) as raised:
        mvsmtp.send_message({"host": host, "port": port}, SENDER, unique_address(), "x", "x\n", [attachment])

    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    "attachments",
    ["/tmp/a.pdf", ("/tmp/a.pdf",), [42], [None], [{"data": 42}], [("/tmp/a.pdf", 42)]],
)
def test_wrapper_rejects_attachment_types(server_address, attachments):
    host, port = server_address

    with pytest.raises(TypeError):
        mvsmtp.send_message({"host": host, "port": port}, SENDER, unique_address(), "x", "x\n", attachments)


@pytest.mark.parametrize("argument", ["sender", "to", "subject", "body"])
def test_wrapper_rejects_non_ascii_str_with_8bit_charset(server_address, argument):
    host, port = server_address
    arguments = {"sender": SENDER, "to": unique_address(), "subject": "Subject", "body": "Body.\n"}
    arguments[argument] = "Zoë <zoe@example.test>" if argument in ("sender", "to") else "Crème brûlée"

    with pytest.raises(ValueError) as raised:
        mvsmtp.send_message({"host": host, "port": port, "charset": "ISO-8859-1"}, **arguments)

    assert "charset" in str(raised.value)


def test_wrapper_rejects_list_for_single_value_option(server_address):
    host, port = server_address

    with pytest.raises(TypeError):
        mvsmtp.send_message({"host": host, "port": port, "timeout": [5, 10]}, SENDER, unique_address(), "x", "x\n")


def test_ascii_str_allowed_with_8bit_charset(options, maildir):
    options["charset"] = "ISO-8859-1"

    _, message = send_and_receive(maildir, options, "Plain ASCII", "Plain ASCII body.\n")

    assert message["Subject"] == "Plain ASCII"


# send_message_or_raise


def test_send_message_or_raise_returns_none(options, maildir):
    recipient = unique_address()

    assert mvsmtp.send_message_or_raise(options, SENDER, recipient, "or_raise", "Sent.\n") is None

    _, message = receive(maildir, recipient)
    assert message["Subject"] == "or_raise"


def test_send_message_or_raise_raises(options):
    with pytest.raises(mvsmtp.SmtpError) as raised:
        mvsmtp.send_message_or_raise(options, SENDER, "reject@example.test", "Rejected", "Not delivered.\n")

    assert raised.value.status == mvsmtp.SMTP_RECIPIENTS_REJECTED
    assert raised.value.reply_code == 550
    assert "reject@example.test" in raised.value.message
