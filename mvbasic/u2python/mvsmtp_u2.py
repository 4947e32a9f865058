"""Bridge from U2 BASIC (UniVerse 11.3 and later, UniData 8.2 and later) to libmvsmtp.

The BASIC subroutines of this folder call these functions with PyCallFunction:
MVSMTP.SEND calls send(), MVSMTP.SEND.RAW send_raw(), and the session subroutines
MVSMTP.OPEN, MVSMTP.SESSION.SEND, MVSMTP.SESSION.MESSAGE and MVSMTP.CLOSE call
open_session(), session_send(), session_message() and close_session(). Before the call
they replace the MultiValue marks with control characters, because how U2 hands a mark
to Python depends on NLS:

- options: one ``name=value`` per line (attribute marks become LF);
- to: one recipient per line (value marks become LF);
- body and message: one line of text per line (attribute marks become LF);
- attachments: one attachment per line, its values separated by TAB (value marks) and
  the lines of content held in memory separated by VT, "\\x0b" (subvalue marks).

Each argument may be ``str`` or ``bytes``; other values, such as an int that U2 made of
a numeric subject, are converted with str(). The result is one string, the status code,
a space and the error line, such as ``"0 "`` or ``"11 The server rejected ..."``. BASIC
splits it at the first space. open_session() returns the session id in place of the
status, or the negative status when the session could not be opened, as smtp_open does.
No exception leaves these functions: an argument that cannot be passed gives status 2
(SMTP_INVALID_ARGUMENT), and a library that cannot be loaded gives status 99
(SMTP_INTERNAL_ERROR), each with a message that names the cause.

This module needs python/mvsmtp.py of the libmvsmtp repository on the Python path, and
that module finds libmvsmtp through MVSMTP_LIBRARY or the system's library path.
"""

import codecs

SMTP_INVALID_ARGUMENT = 2
SMTP_INTERNAL_ERROR = 99

# The library's own value mark, which it reads in UTF-8 text and as a byte.
_VALUE_MARK_TEXT = "\uf8fd"
_VALUE_MARK_BYTE = b"\xfd"

_UTF8_NAMES = ("utf-8", "utf8")

# The library looks charset labels up in the WHATWG Encoding Standard, which reads these
# ISO 8859 and ASCII labels as the Windows code pages that extend them, so text is encoded
# with the same code page here.
_WHATWG_CODEC = {"ascii": "cp1252", "iso8859-1": "cp1252", "iso8859-9": "cp1254", "iso8859-11": "cp874"}

# The codec of each open session whose options set a charset other than UTF-8, by session
# id, for the messages sent on it.
# NOTE: this assumes that U2 keeps one Python interpreter for the life of a database
# process, as the library keeps its sessions. That has not been verified on U2.
_session_charsets = {}


def send(options, sender, to, subject, body, attachments):
    """Compose a MIME message, send it with smtp_send_message, and return "STATUS ERRTEXT"."""

    def call(mvsmtp):
        option_lines = _lines(options)
        charset = _charset_of(option_lines)
        return mvsmtp.send_message(option_lines, *_message_arguments(charset, sender, to, subject, body, attachments))

    return _run(call)


def send_raw(options, sender, to, message):
    """Send a ready-made message with smtp_send_with, and return "STATUS ERRTEXT"."""

    def call(mvsmtp):
        # smtp_send_with passes the message on unchanged, so no charset applies.
        return mvsmtp.send_with(_lines(options), _text(sender), _recipients(to, None), _text(message))

    return _run(call)


def open_session(options):
    """Open a session with smtp_open, and return "ID ERRTEXT".

    ID is the session id, greater than 0, or the negative status when the session could
    not be opened, as smtp_open returns it.
    """

    def call(mvsmtp):
        option_lines = _lines(options)
        # Found before opening, so that an unknown charset leaves no session open.
        charset = _charset_of(option_lines)
        try:
            session = mvsmtp.open_session(option_lines)
        except mvsmtp.SmtpError as error:
            return -error.status
        if charset is not None:
            _session_charsets[session.id] = charset
        return session.id

    return _run(call)


def session_send(session, sender, to, message):
    """Send a ready-made message on a session with smtp_session_send, and return "STATUS ERRTEXT"."""

    def call(mvsmtp):
        return mvsmtp.Session(_session_id(session)).send(_text(sender), _recipients(to, None), _text(message))

    return _run(call)


def session_message(session, options, sender, to, subject, body, attachments):
    """Compose a MIME message, send it on a session with smtp_session_send_message, and return "STATUS ERRTEXT".

    OPTIONS contains only message options, such as cc or charset. Any other option
    belongs to the session and gives status 2.
    """

    def call(mvsmtp):
        session_id = _session_id(session)
        option_lines = _lines(options)
        if any(_option_name(line) == "charset" for line in option_lines):
            charset = _charset_of(option_lines)
        else:
            charset = _session_charsets.get(session_id)
        arguments = _message_arguments(charset, sender, to, subject, body, attachments)
        return mvsmtp.Session(session_id).send_message(*arguments, options=option_lines)

    return _run(call)


def close_session(session):
    """Close a session with smtp_close, and return "STATUS ERRTEXT"."""

    def call(mvsmtp):
        session_id = _session_id(session)
        _session_charsets.pop(session_id, None)
        return mvsmtp.Session(session_id).close()

    return _run(call)


def _run(call):
    """Run CALL with the mvsmtp module and return "STATUS ERRTEXT", turning every exception into a status."""
    try:
        import mvsmtp
    except (ImportError, OSError) as error:
        return _result(SMTP_INTERNAL_ERROR, "Loading libmvsmtp from Python failed: {}".format(error))

    try:
        status = call(mvsmtp)
    except (TypeError, ValueError, LookupError) as error:
        return _result(SMTP_INVALID_ARGUMENT, str(error))
    except Exception as error:  # Anything else would surface in BASIC as a bare Python exception.
        return _result(SMTP_INTERNAL_ERROR, "{}: {}".format(type(error).__name__, error))
    return _result(status, mvsmtp.last_error())


def _message_arguments(charset, sender, to, subject, body, attachments):
    """Return sender, to, subject, body and attachments as mvsmtp.send_message takes them."""
    return (
        _encode(sender, charset, "sender"),
        _recipients(to, charset),
        _encode(subject, charset, "subject"),
        _encode(body, charset, "body"),
        _attachments(attachments, charset),
    )


def _session_id(session):
    """Return SESSION, which BASIC passes as a number or as text, as an int."""
    if isinstance(session, int) and not isinstance(session, bool):
        return session
    if isinstance(session, float) and session.is_integer():
        return int(session)
    text = _text(session)
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    text = text.strip()
    if not text.isdigit():
        raise ValueError(
            "The session id {!r} is invalid because it is not a whole number above 0. Pass the SESSION "
            "that MVSMTP.OPEN returned.".format(text)
        )
    return int(text)


def _result(status, error):
    return "{} {}".format(status, error)


def _text(value):
    """Return VALUE as str or bytes. None becomes "", and other types their str()."""
    if value is None:
        return ""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    return str(value)


def _split(value, separator):
    """Split str or bytes VALUE at the one-character SEPARATOR, given as str."""
    if isinstance(value, bytes):
        return value.split(separator.encode("ascii"))
    return value.split(separator)


def _lines(options):
    """Return the non-empty option lines of OPTIONS."""
    return [line for line in _split(_text(options), "\n") if line.strip()]


def _charset_of(option_lines):
    """Return the Python codec name of the last charset option, or None for UTF-8."""
    charset = None
    for line in option_lines:
        if _option_name(line) == "charset":
            charset = _option_text(line).partition("=")[2].strip() or None
    if charset is None or charset.lower() in _UTF8_NAMES:
        return None
    # LookupError for a charset that Python does not know, reported as status 2.
    name = codecs.lookup(charset).name
    return _WHATWG_CODEC.get(name, name)


def _option_text(line):
    return line.decode("ascii", errors="replace") if isinstance(line, bytes) else line


def _option_name(line):
    """Return the lower-case name of a name=value option line, or "" when it has no "="."""
    name, equals, _ = _option_text(line).partition("=")
    return name.strip().lower() if equals else ""


def _encode(value, charset, argument):
    """Return VALUE ready for the library: str as it is, or bytes in CHARSET.

    With charset=ISO-8859-1 and the like, the library decodes text from that character
    set, so str must be encoded into it as a non-NLS system would pass it. mvsmtp.py
    encodes str as UTF-8 and refuses non-ASCII str with such a charset.
    """
    value = _text(value)
    if charset is None or isinstance(value, bytes):
        return value
    try:
        return value.encode(charset)
    except UnicodeEncodeError as error:
        raise ValueError(
            "The {} contains {!r}, which the charset option {} cannot represent. "
            "Remove the charset option to send UTF-8.".format(argument, error.object[error.start:error.end], charset)
        ) from error


def _recipients(to, charset):
    """Join the recipients, one per line, with value marks, as the C interface receives them."""
    addresses = [address for address in _split(_text(to), "\n") if address.strip()]
    addresses = [_encode(address, charset, "recipient") for address in addresses]
    if any(isinstance(address, bytes) for address in addresses):
        return _VALUE_MARK_BYTE.join(_as_bytes(address) for address in addresses)
    return _VALUE_MARK_TEXT.join(addresses)


def _as_bytes(value):
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _attachments(attachments, charset):
    """Return the attachments as the list that mvsmtp.send_message takes, or None."""
    result = []
    for line in _split(_text(attachments), "\n"):
        if not line.strip():
            continue
        values = _split(line, "\t") + [line[:0]] * 4
        path, name, content_type, content = values[:4]
        name = _encode(name, charset, "attachment name") or None
        content_type = _encode(content_type, charset, "attachment content type") or None
        if path.strip():
            result.append((_encode(path, charset, "attachment path"), name, content_type))
        else:
            # Content held in memory: its lines were subvalues.
            data = _encode(content, charset, "attachment content")
            data = data.replace(b"\x0b", b"\n") if isinstance(data, bytes) else data.replace("\x0b", "\n")
            result.append({"data": data, "name": name, "type": content_type})
    return result or None
