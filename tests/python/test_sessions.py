"""End-to-end tests of mvsmtp.open_session() and mvsmtp.Session through the Postfix test server.

Each test sends to its own random recipients and finds the deliveries in the maildir by
their X-Original-To: field. A session keeps one connection open, so the tests also read
the transcript of each call to see that a message did not connect and greet again.
"""

import email
import email.policy
import threading
import uuid
from email.message import EmailMessage

import pytest

import mvsmtp

SENDER = "py-session@example.test"
HELO = "pytest.example.test"

# Bounds of the thread tests: every thread must finish within this time.
THREAD_COUNT = 4
MESSAGES_PER_THREAD = 5
THREAD_TIMEOUT_SECONDS = 60.0


def unique_address() -> str:
    """Return a new recipient address, so that each test finds only its own messages."""
    return "py-session-{}@example.test".format(uuid.uuid4().hex)


def raw_message(recipient: str, subject: str) -> str:
    return "From: {}\nTo: {}\nSubject: {}\n\nSent on a session.\n".format(SENDER, recipient, subject)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def assert_ok(status: int) -> None:
    assert status == mvsmtp.SMTP_OK, "{}: {}".format(mvsmtp.status_name(status), mvsmtp.last_error())


@pytest.fixture
def options(smtp_server) -> dict:
    """Options that open a session on the plain listener of the Postfix test server."""
    host, port = smtp_server
    return {"host": host, "port": port, "helo": HELO, "timeout": 30}


@pytest.fixture
def secure_options(secure_server) -> dict:
    """Options that open a session with STARTTLS and a login on the submission listener."""
    return {
        "host": secure_server.host,
        "port": secure_server.submission_port,
        "tls": "starttls",
        "tls_ca_file": secure_server.ca_file,
        "user": secure_server.user,
        "password": secure_server.password,
    }


@pytest.fixture
def session(options):
    with mvsmtp.open_session(options) as opened:
        yield opened


# Opening


def test_open_returns_session(options):
    session = mvsmtp.open_session(options)
    try:
        assert session.id > 0
        assert not session.closed
        assert "C: EHLO {}".format(HELO) in mvsmtp.last_transcript()
        assert mvsmtp.last_error() == ""
    finally:
        session.close()


def test_open_connect_failure_raises(free_port):
    with pytest.raises(mvsmtp.SmtpError) as raised:
        mvsmtp.open_session({"host": "127.0.0.1", "port": free_port, "timeout": 5})

    assert raised.value.status == mvsmtp.SMTP_CONNECT_FAILED
    assert raised.value.status_name == "SMTP_CONNECT_FAILED"
    assert str(free_port) in raised.value.message
    assert raised.value.message == mvsmtp.last_error()


def test_open_invalid_option_raises(options):
    options["timeout"] = 0

    with pytest.raises(mvsmtp.SmtpError) as raised:
        mvsmtp.open_session(options)

    assert raised.value.status == mvsmtp.SMTP_INVALID_ARGUMENT
    assert "timeout" in raised.value.message
    assert mvsmtp.last_transcript() == "", "the library connected despite an invalid option"


def test_open_wrong_password_raises(secure_options):
    secure_options["password"] = "wrong-password"

    with pytest.raises(mvsmtp.SmtpError) as raised:
        mvsmtp.open_session(secure_options)

    assert raised.value.status == mvsmtp.SMTP_AUTH_FAILED
    assert raised.value.reply_code == 535
    assert "wrong-password" not in raised.value.message


# Sending


def test_several_messages_delivered(session, maildir):
    recipients = [unique_address() for _ in range(3)]

    for index, recipient in enumerate(recipients):
        assert_ok(session.send(SENDER, recipient, raw_message(recipient, "Session message {}".format(index))))
        transcript = mvsmtp.last_transcript()
        # The connection stays open, so no message connects or greets again.
        assert "Connected to" not in transcript
        assert "C: EHLO" not in transcript
        assert "C: QUIT" not in transcript

    for index, recipient in enumerate(recipients):
        assert parse(maildir.wait_for_message(recipient))["Subject"] == "Session message {}".format(index)


def test_starttls_session_delivered(secure_options, maildir):
    recipients = [unique_address(), unique_address()]

    with mvsmtp.open_session(secure_options) as session:
        for recipient in recipients:
            assert_ok(session.send_message(SENDER, recipient, "Over TLS", "Sent on a TLS session.\n"))
            assert "C: AUTH" not in mvsmtp.last_transcript()

    for recipient in recipients:
        assert parse(maildir.wait_for_message(recipient))["Subject"] == "Over TLS"


def test_composed_message_per_message_cc(session, maildir):
    recipient, cc, next_recipient = unique_address(), unique_address(), unique_address()

    assert_ok(session.send_message(SENDER, recipient, "With Cc", "First.\n", options={"cc": cc}))
    assert_ok(session.send_message(SENDER, next_recipient, "Without Cc", "Second.\n"))

    message = parse(maildir.wait_for_message(recipient))
    assert message["Subject"] == "With Cc"
    assert message["Cc"].addresses[0].addr_spec == cc
    assert parse(maildir.wait_for_message(cc))["Subject"] == "With Cc"
    # The cc option applied to the first message only.
    following = parse(maildir.wait_for_message(next_recipient))
    assert following["Subject"] == "Without Cc"
    assert following["Cc"] is None


def test_composed_message_with_attachment(session, maildir, tmp_path):
    recipient = unique_address()
    report = tmp_path / "report.csv"
    report.write_bytes(b"customer,amount\n42,10.00\n")

    status = session.send_message(
        SENDER, recipient, "Statement", "Attached.\n", [str(report), {"data": "note\n", "name": "note.txt"}]
    )

    assert_ok(status)
    message = parse(maildir.wait_for_message(recipient))
    assert [part.get_filename() for part in message.iter_attachments()] == ["report.csv", "note.txt"]


def test_rejected_recipient_then_success(session, maildir):
    recipient = unique_address()

    status = session.send(SENDER, "reject@example.test", raw_message("reject@example.test", "Rejected"))

    assert status == mvsmtp.SMTP_RECIPIENTS_REJECTED
    assert mvsmtp.last_reply_code() == 550
    assert "reject@example.test" in mvsmtp.last_error()

    assert_ok(session.send_message(SENDER, recipient, "After a rejection", "Still connected.\n"))
    assert mvsmtp.last_error() == ""
    assert "C: EHLO" not in mvsmtp.last_transcript()
    assert parse(maildir.wait_for_message(recipient))["Subject"] == "After a rejection"


@pytest.mark.parametrize(
    "name, value",
    [("host", "127.0.0.1"), ("port", 2525), ("tls", "none"), ("user", "testuser"), ("password", "secret"), ("timeout", 5)],
)
def test_connection_option_per_message_rejected(session, maildir, name, value):
    recipient = unique_address()

    status = session.send_message(SENDER, recipient, "Not sent", "Not sent.\n", options={name: value})

    assert status == mvsmtp.SMTP_INVALID_ARGUMENT, mvsmtp.status_name(status)
    assert name in mvsmtp.last_error()
    assert mvsmtp.last_transcript() == ""
    # The session stays usable after the rejected call.
    assert_ok(session.send_message(SENDER, recipient, "Sent after", "Sent.\n"))
    assert parse(maildir.wait_for_message(recipient))["Subject"] == "Sent after"


def test_send_or_raise_raises(session):
    with pytest.raises(mvsmtp.SmtpError) as raised:
        session.send_or_raise(SENDER, "reject@example.test", raw_message("reject@example.test", "Rejected"))

    assert raised.value.status == mvsmtp.SMTP_RECIPIENTS_REJECTED
    assert raised.value.reply_code == 550
    assert "reject@example.test" in raised.value.message


def test_send_message_or_raise(session, maildir):
    recipient = unique_address()

    assert session.send_message_or_raise(SENDER, recipient, "or_raise", "Sent.\n") is None
    with pytest.raises(mvsmtp.SmtpError) as raised:
        session.send_message_or_raise(SENDER, recipient, "x", "x\n", options={"port": 25})

    assert raised.value.status == mvsmtp.SMTP_INVALID_ARGUMENT
    assert parse(maildir.wait_for_message(recipient))["Subject"] == "or_raise"


# Character sets


def test_open_charset_applies_to_messages(options, maildir):
    recipient = unique_address()
    options["charset"] = "ISO-8859-1"

    with mvsmtp.open_session(options) as session:
        with pytest.raises(ValueError) as raised:
            session.send_message(SENDER, recipient, "Crème", "Crème brûlée\n")
        assert "charset" in str(raised.value)

        assert_ok(session.send_message(SENDER, recipient, "Cr\xe8me".encode("latin-1"), "Cr\xe8me br\xfbl\xe9e\n".encode("latin-1")))

    message = parse(maildir.wait_for_message(recipient))
    assert message["Subject"] == "Crème"
    assert message.get_body(("plain",)).get_content().strip() == "Crème brûlée"


def test_message_charset_overrides_open(session, maildir):
    recipient, next_recipient = unique_address(), unique_address()

    status = session.send_message(
        SENDER, recipient, "Gr\xfc\xdfe".encode("latin-1"), "Gr\xf6\xdfe\n".encode("latin-1"), options={"charset": "ISO-8859-1"}
    )
    assert_ok(status)
    # The charset option applied to that message only, so UTF-8 text follows.
    assert_ok(session.send_message(SENDER, next_recipient, "Grüße", "Größe\n"))

    assert parse(maildir.wait_for_message(recipient))["Subject"] == "Grüße"
    following = parse(maildir.wait_for_message(next_recipient))
    assert following["Subject"] == "Grüße"
    assert following.get_body(("plain",)).get_content().strip() == "Größe"


# Closing


def test_close_sends_quit(options):
    session = mvsmtp.open_session(options)

    assert session.close() == mvsmtp.SMTP_OK

    assert session.closed
    assert "C: QUIT" in mvsmtp.last_transcript()


def test_close_twice_harmless(options):
    session = mvsmtp.open_session(options)

    assert session.close() == mvsmtp.SMTP_OK
    assert session.close() == mvsmtp.SMTP_OK
    assert session.closed


def test_closed_session_rejected(options):
    session = mvsmtp.open_session(options)
    session.close()

    status = session.send(SENDER, unique_address(), raw_message("x@example.test", "Closed"))

    assert status == mvsmtp.SMTP_INVALID_ARGUMENT
    assert "Unknown session {}".format(session.id) in mvsmtp.last_error()
    assert mvsmtp.last_transcript() == ""
    assert session.send_message(SENDER, unique_address(), "Closed", "x\n") == mvsmtp.SMTP_INVALID_ARGUMENT


def test_unknown_session_rejected():
    unknown = mvsmtp.Session(2**31 - 1)

    assert unknown.send(SENDER, unique_address(), "Subject: x\n\nx\n") == mvsmtp.SMTP_INVALID_ARGUMENT
    assert "Unknown session 2147483647" in mvsmtp.last_error()
    assert unknown.close() == mvsmtp.SMTP_INVALID_ARGUMENT


def test_session_closed_elsewhere(options):
    session = mvsmtp.open_session(options)
    same_id = mvsmtp.Session(session.id)

    assert same_id.close() == mvsmtp.SMTP_OK
    assert session.close() == mvsmtp.SMTP_INVALID_ARGUMENT
    assert session.closed


@pytest.mark.parametrize("session_id, error", [(0, ValueError), (-2, ValueError), (2**31, ValueError), ("1", TypeError), (True, TypeError)])
def test_invalid_session_id_raises(session_id, error):
    with pytest.raises(error):
        mvsmtp.Session(session_id)


def test_context_manager_closes(options, maildir):
    recipient = unique_address()

    with mvsmtp.open_session(options) as session:
        assert_ok(session.send(SENDER, recipient, raw_message(recipient, "In a with block")))

    assert session.closed
    assert "C: QUIT" in mvsmtp.last_transcript()
    assert session.send(SENDER, recipient, raw_message(recipient, "After")) == mvsmtp.SMTP_INVALID_ARGUMENT
    assert parse(maildir.wait_for_message(recipient))["Subject"] == "In a with block"


def test_context_manager_closes_on_exception(options):
    with pytest.raises(RuntimeError):
        with mvsmtp.open_session(options) as session:
            raise RuntimeError("failure inside the with block")

    assert session.closed
    assert mvsmtp.Session(session.id).close() == mvsmtp.SMTP_INVALID_ARGUMENT


# Threads


def run_threads(target, count: int) -> None:
    """Run ``target(index)`` on ``count`` threads and fail when one is still running after the bound."""
    threads = [threading.Thread(target=target, args=(index,), daemon=True) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a thread ran longer than {} s".format(THREAD_TIMEOUT_SECONDS)


def test_threads_with_own_sessions(options, maildir):
    recipients = [[unique_address() for _ in range(MESSAGES_PER_THREAD)] for _ in range(THREAD_COUNT)]
    results = [[] for _ in range(THREAD_COUNT)]
    session_ids = [None] * THREAD_COUNT

    def send_all(index: int) -> None:
        with mvsmtp.open_session(options) as session:
            session_ids[index] = session.id
            for number, recipient in enumerate(recipients[index]):
                subject = "Thread {} message {}".format(index, number)
                status = session.send_message(SENDER, recipient, subject, "From a thread.\n")
                # The last error belongs to this thread, so it is read here.
                results[index].append((status, mvsmtp.last_error()))

    run_threads(send_all, THREAD_COUNT)

    assert len(set(session_ids)) == THREAD_COUNT, session_ids
    for index in range(THREAD_COUNT):
        assert results[index] == [(mvsmtp.SMTP_OK, "")] * MESSAGES_PER_THREAD
        for number, recipient in enumerate(recipients[index]):
            assert parse(maildir.wait_for_message(recipient))["Subject"] == "Thread {} message {}".format(index, number)


def test_threads_share_session(session, maildir):
    thread_count, messages_per_thread = 2, 3
    recipients = [[unique_address() for _ in range(messages_per_thread)] for _ in range(thread_count)]
    results = [[] for _ in range(thread_count)]

    def send_all(index: int) -> None:
        for recipient in recipients[index]:
            status = session.send(SENDER, recipient, raw_message(recipient, "Shared session"))
            results[index].append((status, mvsmtp.last_error()))

    run_threads(send_all, thread_count)

    for index in range(thread_count):
        assert results[index] == [(mvsmtp.SMTP_OK, "")] * messages_per_thread
        for recipient in recipients[index]:
            assert parse(maildir.wait_for_message(recipient))["Subject"] == "Shared session"
