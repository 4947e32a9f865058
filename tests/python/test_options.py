"""End-to-end tests of mvsmtp.send_with(): per-call options, TLS and SMTP AUTH.

They use the Postfix test server's submission port (STARTTLS and AUTH required) and its
implicit-TLS port, with the test CA from the server's state folder. See conftest.py for
the environment variables that move them.
"""

import base64
import uuid

import pytest

import mvsmtp

SENDER = "py-options@example.test"
WRONG_PASSWORD = "Wr0ng-Pass;word"


def unique_address() -> str:
    """Return a new recipient address, so that each test finds only its own messages."""
    return "py-options-{}@example.test".format(uuid.uuid4().hex)


def message_for(recipient: str, subject: str) -> str:
    return "From: <{}>\nTo: <{}>\nSubject: {}\nMessage-ID: <{}@example.test>\n\nSent by test_options.py.\n".format(
        SENDER, recipient, subject, uuid.uuid4().hex
    )


def submission_options(server, **overrides) -> dict:
    """Options for STARTTLS and AUTH on the submission port, with the test CA."""
    options = {
        "host": server.host,
        "port": server.submission_port,
        "tls": "starttls",
        "tls_ca_file": server.ca_file,
        "user": server.user,
        "password": server.password,
        "timeout": 10,
    }
    options.update(overrides)
    return options


def secret_forms(user: str, password: str) -> list:
    """Return the password as text and in the base64 forms that AUTH PLAIN and LOGIN send."""
    forms = [password, "\0{}\0{}".format(user, password)]
    return [password] + [base64.b64encode(form.encode("utf-8")).decode("ascii") for form in forms]


def assert_no_secret(user: str, password: str) -> None:
    error = mvsmtp.last_error()
    transcript = mvsmtp.last_transcript()
    for form in secret_forms(user, password):
        assert form not in error, "the last error contains {!r}".format(form)
        assert form not in transcript, "the transcript contains {!r}".format(form)


def received_header(stored: bytes) -> str:
    """Return the first Received: field of a stored message, unfolded onto one line."""
    lines = stored.decode("utf-8", errors="replace").split("\n")
    for index, line in enumerate(lines):
        if line.startswith("Received:"):
            field = [line]
            for continuation in lines[index + 1 :]:
                if not continuation[:1] in (" ", "\t"):
                    break
                field.append(continuation.strip())
            return " ".join(field)
    pytest.fail("the stored message has no Received: field:\n{}".format(stored.decode("utf-8", errors="replace")))


# Delivery over TLS with AUTH


def test_starttls_plain_delivers(secure_server, maildir):
    recipient = unique_address()
    message = message_for(recipient, "STARTTLS and PLAIN")

    status = mvsmtp.send_with(submission_options(secure_server, auth="PLAIN"), SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error() + "\n" + mvsmtp.last_transcript()
    assert mvsmtp.last_reply_code() == 250
    transcript = mvsmtp.last_transcript()
    assert "C: STARTTLS" in transcript
    assert "* TLS established" in transcript
    assert "C: AUTH PLAIN" in transcript

    stored = maildir.wait_for_stored_message(recipient)
    assert stored.endswith(message.encode("utf-8"))


def test_received_header_shows_tls_auth(secure_server, maildir):
    recipient = unique_address()

    status = mvsmtp.send_with(submission_options(secure_server), SENDER, recipient, message_for(recipient, "Received"))

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    received = received_header(maildir.wait_for_stored_message(recipient))
    # Postfix writes "(using TLSv1.3 with cipher ...)" with smtpd_tls_received_header, and the
    # SASL login with its local domain appended, because smtpd_sasl_local_domain is set.
    assert "(using TLSv1." in received, received
    assert "(Authenticated sender: testuser@example.test)" in received, received
    assert " with ESMTPSA " in received, received


def test_implicit_tls_delivers(secure_server, maildir):
    recipient = unique_address()
    message = message_for(recipient, "Implicit TLS")
    options = submission_options(secure_server, port=secure_server.implicit_port, tls="implicit")

    status = mvsmtp.send_with(options, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error() + "\n" + mvsmtp.last_transcript()
    transcript = mvsmtp.last_transcript()
    assert "C: STARTTLS" not in transcript
    assert transcript.index("* TLS established") < transcript.index("S: 220 ")

    stored = maildir.wait_for_stored_message(recipient)
    assert stored.endswith(message.encode("utf-8"))
    assert "(using TLSv1." in received_header(stored)


# Failures


def test_wrong_password_auth_failed(secure_server):
    recipient = unique_address()
    options = submission_options(secure_server, password=WRONG_PASSWORD)

    status = mvsmtp.send_with(options, SENDER, recipient, message_for(recipient, "Wrong password"))

    assert status == mvsmtp.SMTP_AUTH_FAILED, mvsmtp.status_name(status)
    assert mvsmtp.last_reply_code() == 535
    assert "535" in mvsmtp.last_error()
    assert "C: MAIL FROM" not in mvsmtp.last_transcript()
    assert_no_secret(secure_server.user, WRONG_PASSWORD)


def test_missing_ca_tls_failed(secure_server):
    recipient = unique_address()
    options = submission_options(secure_server)
    del options["tls_ca_file"]

    status = mvsmtp.send_with(options, SENDER, recipient, message_for(recipient, "Unknown CA"))

    assert status == mvsmtp.SMTP_TLS_FAILED, mvsmtp.status_name(status)
    assert "unknown issuer" in mvsmtp.last_error()
    transcript = mvsmtp.last_transcript()
    assert "C: AUTH" not in transcript
    assert "C: MAIL FROM" not in transcript


def test_tls_none_with_credentials_invalid(secure_server):
    recipient = unique_address()
    options = submission_options(secure_server, tls="none")

    status = mvsmtp.send_with(options, SENDER, recipient, message_for(recipient, "No TLS"))

    assert status == mvsmtp.SMTP_INVALID_ARGUMENT, mvsmtp.status_name(status)
    assert "tls=none" in mvsmtp.last_error()
    assert mvsmtp.last_transcript() == "", "the library connected despite the invalid options"
    assert mvsmtp.last_reply_code() == 0


def test_missing_host_invalid():
    status = mvsmtp.send_with(None, SENDER, unique_address(), "Subject: x\n\nx\n")

    assert status == mvsmtp.SMTP_INVALID_ARGUMENT, mvsmtp.status_name(status)
    assert "host" in mvsmtp.last_error()
    assert mvsmtp.last_transcript() == ""


def test_unknown_option_invalid(smtp_server):
    host, port = smtp_server

    status = mvsmtp.send_with({"host": host, "port": port, "colour": "blue"}, SENDER, unique_address(), "x\n")

    assert status == mvsmtp.SMTP_INVALID_ARGUMENT, mvsmtp.status_name(status)
    assert '"colour"' in mvsmtp.last_error()
    assert mvsmtp.last_transcript() == ""


def test_send_with_or_raise(secure_server):
    recipient = unique_address()
    options = submission_options(secure_server, password=WRONG_PASSWORD)

    with pytest.raises(mvsmtp.SmtpError) as raised:
        mvsmtp.send_with_or_raise(options, SENDER, recipient, message_for(recipient, "Raise"))

    assert raised.value.status == mvsmtp.SMTP_AUTH_FAILED
    assert raised.value.status_name == "SMTP_AUTH_FAILED"
    assert raised.value.reply_code == 535
    assert WRONG_PASSWORD not in str(raised.value)


def test_send_with_or_raise_success(secure_server, maildir):
    recipient = unique_address()
    message = message_for(recipient, "No raise")

    assert mvsmtp.send_with_or_raise(submission_options(secure_server), SENDER, recipient, message) is None

    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


# Forms of the options argument


def test_options_as_list_of_lines(secure_server, maildir):
    recipient = unique_address()
    message = message_for(recipient, "List of lines")
    lines = [
        "host={}".format(secure_server.host),
        b"port=" + str(secure_server.submission_port).encode("ascii"),
        "tls=starttls",
        "tls_ca_file={}".format(secure_server.ca_file),
        "user={}".format(secure_server.user),
        "password={}".format(secure_server.password),
    ]

    status = mvsmtp.send_with(lines, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_options_as_tuple_of_lines(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_for(recipient, "Tuple of lines")

    status = mvsmtp.send_with(("host=" + host, "port={}".format(port)), SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_options_as_ready_made_string(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_for(recipient, "Ready-made list")

    # A str is passed unchanged, so its LF, CRLF and attribute marks separate the entries.
    options = "host={}\r\nport={}\uf8fetimeout=10\n".format(host, port)
    status = mvsmtp.send_with(options, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_options_as_ready_made_bytes(smtp_server, maildir):
    host, port = smtp_server
    recipient = unique_address()
    message = message_for(recipient, "Ready-made bytes")

    options = "host={}\xfeport={}".format(host, port).encode("latin-1")
    status = mvsmtp.send_with(options, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_dict_with_bytes_names_and_values(secure_server, maildir):
    recipient = unique_address()
    message = message_for(recipient, "Bytes in a dict")
    options = {key.encode("ascii"): value for key, value in submission_options(secure_server).items()}
    options[b"password"] = secure_server.password.encode("ascii")

    status = mvsmtp.send_with(options, SENDER, recipient, message)

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_dict_bool_true_sends_1(secure_server, maildir):
    recipient = unique_address()
    message = message_for(recipient, "Bool value")
    options = submission_options(secure_server, tls_insecure=True)
    del options["tls_ca_file"]

    status = mvsmtp.send_with(options, SENDER, recipient, message)

    # Only tls_insecure=1 lets the handshake pass without the test CA.
    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert maildir.wait_for_message(recipient) == message.encode("utf-8")


def test_dict_bool_false_sends_0(secure_server):
    recipient = unique_address()
    options = submission_options(secure_server, tls_insecure=False)
    del options["tls_ca_file"]

    status = mvsmtp.send_with(options, SENDER, recipient, message_for(recipient, "Bool false"))

    assert status == mvsmtp.SMTP_TLS_FAILED, mvsmtp.status_name(status)


def test_dict_value_keeps_equals_and_spaces(smtp_server):
    host, port = smtp_server

    # The library reads everything after the first "=" as the value, so "a=b c" arrives whole
    # and fails as a host name rather than as a malformed entry.
    status = mvsmtp.send_with({"host": host, "port": port, "helo": "a=b c"}, SENDER, unique_address(), "x\n")

    assert status == mvsmtp.SMTP_INVALID_ARGUMENT, mvsmtp.status_name(status)
    assert "a=b c" in mvsmtp.last_error()


# Values that would end their entry are rejected in Python


SEPARATORS = [
    pytest.param("\n", id="LF"),
    pytest.param("\r", id="CR"),
    pytest.param("\r\n", id="CRLF"),
    pytest.param("\0", id="NUL"),
    pytest.param("\uf8fe", id="attribute-mark-U+F8FE"),
    pytest.param(b"\xfe", id="attribute-mark-0xFE"),
]


def inject(separator, before: str, after: str):
    """Return before + separator + after, as bytes when the separator is bytes."""
    if isinstance(separator, bytes):
        return before.encode("ascii") + separator + after.encode("ascii")
    return before + separator + after


def set_known_last_error() -> str:
    """Make this thread's last call fail with a known error, and return that error."""
    assert mvsmtp.set_option("timeout", "not a number") == mvsmtp.SMTP_INVALID_ARGUMENT
    return mvsmtp.last_error()


@pytest.mark.parametrize("separator", SEPARATORS)
def test_value_with_separator_raises(secure_server, separator):
    known_error = set_known_last_error()
    password = inject(separator, "testpass", "host=mail.example.test")
    options = submission_options(secure_server, password=password)

    with pytest.raises(ValueError) as raised:
        mvsmtp.send_with(options, SENDER, unique_address(), "Subject: x\n\nx\n")

    assert "password" in str(raised.value)
    assert "testpass" not in str(raised.value)
    assert mvsmtp.last_error() == known_error, "the library was called"


@pytest.mark.parametrize("separator", SEPARATORS)
def test_name_with_separator_raises(smtp_server, separator):
    host, port = smtp_server
    known_error = set_known_last_error()
    options = {"host": host, "port": port, inject(separator, "helo", "port"): "x"}

    with pytest.raises(ValueError):
        mvsmtp.send_with(options, SENDER, unique_address(), "Subject: x\n\nx\n")

    assert mvsmtp.last_error() == known_error, "the library was called"


@pytest.mark.parametrize("separator", SEPARATORS)
def test_line_with_separator_raises(smtp_server, separator):
    host, port = smtp_server
    known_error = set_known_last_error()
    lines = ["host=" + host, inject(separator, "port={}".format(port), "tls=none")]

    with pytest.raises(ValueError):
        mvsmtp.send_with(lines, SENDER, unique_address(), "Subject: x\n\nx\n")

    assert mvsmtp.last_error() == known_error, "the library was called"


def test_name_with_equals_raises(smtp_server):
    host, port = smtp_server
    known_error = set_known_last_error()

    with pytest.raises(ValueError) as raised:
        mvsmtp.send_with({"host": host, "port=25\nhelo": "x"}, SENDER, unique_address(), "x\n")

    assert "'='" in str(raised.value)
    assert mvsmtp.last_error() == known_error, "the library was called"


def test_empty_name_raises(smtp_server):
    host, port = smtp_server

    with pytest.raises(ValueError):
        mvsmtp.send_with({"host": host, " ": "x"}, SENDER, unique_address(), "x\n")


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(25, id="int"),
        pytest.param({"timeout": 1.5}, id="float-value"),
        pytest.param({"helo": None}, id="None-value"),
        pytest.param({25: "x"}, id="int-name"),
        pytest.param(["host=x", None], id="None-line"),
        pytest.param(["host=x", 25], id="int-line"),
    ],
)
def test_options_of_wrong_type_raise(options):
    with pytest.raises(TypeError):
        mvsmtp.send_with(options, SENDER, unique_address(), "x\n")


# Secrets stay out of the diagnostics


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_password_not_in_diagnostics_after_success(secure_server, mechanism):
    recipient = unique_address()
    options = submission_options(secure_server, auth=mechanism)

    status = mvsmtp.send_with(options, SENDER, recipient, message_for(recipient, mechanism))

    assert status == mvsmtp.SMTP_OK, mvsmtp.last_error()
    assert "C: AUTH {}".format(mechanism) in mvsmtp.last_transcript()
    assert_no_secret(secure_server.user, secure_server.password)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"password": WRONG_PASSWORD}, id="wrong-password"),
        pytest.param({"password": WRONG_PASSWORD, "auth": "LOGIN"}, id="wrong-password-LOGIN"),
        pytest.param({"password": WRONG_PASSWORD, "tls": "none"}, id="tls-none"),
        pytest.param({"password": WRONG_PASSWORD, "tls_ca_file": ""}, id="unknown-CA"),
        pytest.param({"password": WRONG_PASSWORD, "auth": "XOAUTH2"}, id="mechanism-not-offered"),
    ],
)
def test_password_not_in_diagnostics_after_failure(secure_server, overrides):
    recipient = unique_address()
    options = submission_options(secure_server, **overrides)

    status = mvsmtp.send_with(options, SENDER, recipient, message_for(recipient, "Failure"))

    assert status != mvsmtp.SMTP_OK
    assert_no_secret(secure_server.user, WRONG_PASSWORD)


def test_set_option_accepts_bool():
    try:
        assert mvsmtp.set_option("tls_insecure", True) == mvsmtp.SMTP_OK
        assert mvsmtp.set_option("tls_insecure", False) == mvsmtp.SMTP_OK
    finally:
        assert mvsmtp.set_option("tls_insecure", "") == mvsmtp.SMTP_OK
