"""Python bindings for libmvsmtp, an SMTP client library with a C ABI, using ctypes.

Usage::

    import mvsmtp
    status = mvsmtp.send("127.0.0.1", 2525, "", "app@example.test",
                         "user@example.test", "Subject: Hello\\n\\nHello.\\n")
    if status != mvsmtp.SMTP_OK:
        print(mvsmtp.status_name(status), mvsmtp.last_error())

Options such as TLS and credentials go with send_with(), as a dict or a list of
``name=value`` lines (the names are those of smtp_set_option in include/mvsmtp.h)::

    status = mvsmtp.send_with(
        {"host": "127.0.0.1", "port": 2587, "tls": "starttls",
         "user": "app", "password": password},
        "app@example.test", "user@example.test", "Subject: Hello\\n\\nHello.\\n")

send_message() composes a MIME message from a subject, a text and attachments, and
sends it::

    status = mvsmtp.send_message(
        {"host": "127.0.0.1", "port": 2525, "cc": "office@example.test"},
        "Billing <app@example.test>", "user@example.test", "Invoice 42",
        "Please find the invoice attached.\\n", ["/data/invoice-42.pdf"])

open_session() connects, starts TLS and logs in once, and the Session it returns sends
many messages on that connection. Each message gets its own status::

    with mvsmtp.open_session({"host": "127.0.0.1", "port": 2525}) as session:
        for customer in customers:
            status = session.send_message("billing@example.test", customer.address,
                                          "Your statement", customer.statement)

The module loads the shared library when it is imported. It looks in these places:

1. the path in the environment variable ``MVSMTP_LIBRARY``, if it is set;
2. ``../target/release`` and then ``../target/debug``, relative to this file;
3. ``ctypes.util.find_library("mvsmtp")``, which searches the system paths.

Text arguments accept ``str``, which is encoded as UTF-8, or ``bytes``, which pass
unchanged. Use ``bytes`` to send value marks (0xFD) and attribute marks (0xFE) from a
system without NLS. ``None`` passes NULL, which the library rejects with
SMTP_INVALID_ARGUMENT for every argument except ``helo``.

The last error, reply code and transcript belong to the calling thread, as in the C API.
ctypes releases the GIL during each call, so several Python threads can send at once.
"""

import collections.abc
import ctypes
import ctypes.util
import os
import re
import sys
import threading
from typing import Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "ATTRIBUTE_MARK",
    "SMTP_AUTH_FAILED",
    "SMTP_AUTH_UNAVAILABLE",
    "SMTP_CONNECTION_LOST",
    "SMTP_CONNECT_FAILED",
    "SMTP_DATA_REJECTED",
    "SMTP_GREETING_REJECTED",
    "SMTP_HELLO_REJECTED",
    "SMTP_INTERNAL_ERROR",
    "SMTP_INVALID_ARGUMENT",
    "SMTP_MESSAGE_REJECTED",
    "SMTP_MESSAGE_TOO_LARGE",
    "SMTP_OK",
    "SMTP_PARTIAL",
    "SMTP_PROTOCOL_ERROR",
    "SMTP_RECIPIENTS_REJECTED",
    "SMTP_RESOLVE_FAILED",
    "SMTP_SENDER_REJECTED",
    "SMTP_TIMEOUT",
    "SMTP_TLS_FAILED",
    "SMTP_TLS_UNAVAILABLE",
    "SUBVALUE_MARK",
    "Session",
    "SmtpError",
    "VALUE_MARK",
    "last_error",
    "last_reply_code",
    "last_transcript",
    "library",
    "library_path",
    "open_session",
    "send",
    "send_message",
    "send_message_or_raise",
    "send_or_raise",
    "send_with",
    "send_with_or_raise",
    "set_option",
    "status_name",
    "version",
]

# Status codes returned by send(), send_with(), send_message(), set_option() and the methods
# of Session, as defined in include/mvsmtp.h.
SMTP_OK = 0
SMTP_PARTIAL = 1
SMTP_INVALID_ARGUMENT = 2
SMTP_RESOLVE_FAILED = 3
SMTP_CONNECT_FAILED = 4
SMTP_TIMEOUT = 5
SMTP_CONNECTION_LOST = 6
SMTP_PROTOCOL_ERROR = 7
SMTP_GREETING_REJECTED = 8
SMTP_HELLO_REJECTED = 9
SMTP_SENDER_REJECTED = 10
SMTP_RECIPIENTS_REJECTED = 11
SMTP_DATA_REJECTED = 12
SMTP_MESSAGE_REJECTED = 13
SMTP_TLS_FAILED = 14
SMTP_TLS_UNAVAILABLE = 15
SMTP_AUTH_FAILED = 16
SMTP_AUTH_UNAVAILABLE = 17
SMTP_MESSAGE_TOO_LARGE = 18
SMTP_INTERNAL_ERROR = 99

# MultiValue delimiters on a system without NLS. The library also accepts U+F8FC, U+F8FD
# and U+F8FE in UTF-8, so a str argument may contain those characters instead.
VALUE_MARK = b"\xfd"
ATTRIBUTE_MARK = b"\xfe"
SUBVALUE_MARK = b"\xfc"

Text = Union[str, bytes, bytearray]
OptionValue = Union[str, bytes, bytearray, int, bool]
Options = Union[Text, Sequence[Text], Mapping[Text, OptionValue], None]

# Attribute marks: byte 0xFE of 8-bit text, and U+F8FE in UTF-8.
_ATTRIBUTE_MARKS = (b"\xfe", "\uf8fe".encode("utf-8"))

# Bytes that end an entry of an options list in the library, with their names for errors.
# NUL ends the C string, so the library would never see the rest.
_OPTION_SEPARATORS = (
    (b"\n", "a line feed (LF)"),
    (b"\r", "a carriage return (CR)"),
    (b"\x00", "a NUL character"),
    (_ATTRIBUTE_MARKS[0], "an attribute mark (byte 0xFE)"),
    (_ATTRIBUTE_MARKS[1], "an attribute mark (U+F8FE)"),
)

# Options of a mapping whose value may be a list: one entry per item, or one entry with the
# addresses joined by ",".
_REPEATABLE_OPTIONS = (b"header",)
_ADDRESS_LIST_OPTIONS = (b"cc", b"bcc", b"reply_to")

_C_INT_MIN = -(2**31)
_C_INT_MAX = 2**31 - 1


def _library_file_name() -> str:
    if sys.platform == "darwin":
        return "libmvsmtp.dylib"
    if sys.platform in ("win32", "cygwin"):
        return "mvsmtp.dll"
    return "libmvsmtp.so"


def _load_library():
    """Load libmvsmtp and return ``(CDLL, path)``, or raise OSError naming the places tried."""
    explicit_path = os.environ.get("MVSMTP_LIBRARY")
    if explicit_path:
        # An explicit path wins. Falling back to another copy would hide a wrong setting.
        try:
            return ctypes.CDLL(explicit_path), explicit_path
        except OSError as error:
            raise OSError(
                "failed to load libmvsmtp from MVSMTP_LIBRARY={!r}: {}. Correct or unset "
                "MVSMTP_LIBRARY.".format(explicit_path, error)
            ) from error

    tried = []
    module_directory = os.path.dirname(os.path.abspath(__file__))
    file_name = _library_file_name()
    for profile in ("release", "debug"):
        candidate = os.path.normpath(os.path.join(module_directory, "..", "target", profile, file_name))
        tried.append(candidate)
        if os.path.exists(candidate):
            return ctypes.CDLL(candidate), candidate

    found = ctypes.util.find_library("mvsmtp")
    tried.append('ctypes.util.find_library("mvsmtp")')
    if found:
        return ctypes.CDLL(found), found

    raise OSError(
        "libmvsmtp not found. Tried: {}. Build it with `cargo build --release` in the "
        "repository root, or set MVSMTP_LIBRARY to the path of the library.".format(", ".join(tried))
    )


def _declare_functions(lib) -> None:
    """Declare the C signatures, so that ctypes converts arguments and results correctly."""
    lib.smtp_send.argtypes = [
        ctypes.c_char_p,  # host
        ctypes.c_int,  # port
        ctypes.c_char_p,  # helo
        ctypes.c_char_p,  # from
        ctypes.c_char_p,  # to
        ctypes.c_char_p,  # body
    ]
    lib.smtp_send.restype = ctypes.c_int

    lib.smtp_send_with.argtypes = [
        ctypes.c_char_p,  # options
        ctypes.c_char_p,  # from
        ctypes.c_char_p,  # to
        ctypes.c_char_p,  # body
    ]
    lib.smtp_send_with.restype = ctypes.c_int

    lib.smtp_send_message.argtypes = [
        ctypes.c_char_p,  # options
        ctypes.c_char_p,  # from
        ctypes.c_char_p,  # to
        ctypes.c_char_p,  # subject
        ctypes.c_char_p,  # body
        ctypes.c_char_p,  # attachments
    ]
    lib.smtp_send_message.restype = ctypes.c_int

    lib.smtp_open.argtypes = [ctypes.c_char_p]  # options
    lib.smtp_open.restype = ctypes.c_int

    lib.smtp_session_send.argtypes = [
        ctypes.c_int,  # session
        ctypes.c_char_p,  # from
        ctypes.c_char_p,  # to
        ctypes.c_char_p,  # body
    ]
    lib.smtp_session_send.restype = ctypes.c_int

    lib.smtp_session_send_message.argtypes = [
        ctypes.c_int,  # session
        ctypes.c_char_p,  # options
        ctypes.c_char_p,  # from
        ctypes.c_char_p,  # to
        ctypes.c_char_p,  # subject
        ctypes.c_char_p,  # body
        ctypes.c_char_p,  # attachments
    ]
    lib.smtp_session_send_message.restype = ctypes.c_int

    lib.smtp_close.argtypes = [ctypes.c_int]  # session
    lib.smtp_close.restype = ctypes.c_int

    lib.smtp_last_reply_code.argtypes = []
    lib.smtp_last_reply_code.restype = ctypes.c_int

    lib.smtp_last_error.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.smtp_last_error.restype = ctypes.c_int

    lib.smtp_last_error_text.argtypes = []
    lib.smtp_last_error_text.restype = ctypes.c_char_p

    lib.smtp_last_transcript.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.smtp_last_transcript.restype = ctypes.c_int

    lib.smtp_last_transcript_text.argtypes = []
    lib.smtp_last_transcript_text.restype = ctypes.c_char_p

    lib.smtp_set_option.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.smtp_set_option.restype = ctypes.c_int

    lib.smtp_version.argtypes = []
    lib.smtp_version.restype = ctypes.c_char_p

    lib.smtp_status_name.argtypes = [ctypes.c_int]
    lib.smtp_status_name.restype = ctypes.c_char_p


library, library_path = _load_library()
try:
    _declare_functions(library)
except AttributeError as error:
    raise OSError(
        "libmvsmtp at {} lacks a function that this module needs ({}), so it is older than "
        "mvsmtp.py. Rebuild it with `cargo build --release`, or point MVSMTP_LIBRARY at a "
        "current build.".format(library_path, error)
    ) from error


def _to_c_string(value: Optional[Text], argument: str) -> Optional[bytes]:
    """Convert a text argument to bytes for a ``const char *`` parameter, or None for NULL."""
    if value is None:
        return None
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    else:
        raise TypeError("{} must be str, bytes or None, not {}".format(argument, type(value).__name__))

    # C strings end at the first NUL, so the library would silently see a truncated value.
    if b"\x00" in data:
        raise ValueError("{} contains a NUL character, which a C string cannot carry".format(argument))
    return data


def _recipients_to_c_string(to: Union[Text, Sequence[Text], None]) -> Optional[bytes]:
    """Convert ``to`` to bytes, joining a list or tuple of addresses with ","."""
    if isinstance(to, (list, tuple)):
        parts = [_to_c_string(address, "to[{}]".format(index)) for index, address in enumerate(to)]
        if any(part is None for part in parts):
            raise TypeError("to must not contain None")
        return b",".join(parts)
    return _to_c_string(to, "to")


def _from_c_string(data: Optional[bytes]) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", errors="replace")


def send(
    host: Text,
    port: int,
    helo: Optional[Text],
    sender: Text,
    to: Union[Text, Sequence[Text]],
    body: Text,
) -> int:
    """Send one message with smtp_send() and return its status code (SMTP_OK on success).

    ``port`` 0 means 25. ``helo`` None or "" makes the library use the host name.
    ``sender`` "" is the null sender <>. ``to`` is one or more recipients separated by
    ",", ";" or value marks, or a list or tuple of addresses. ``body`` is the message as
    it goes after DATA: headers, a blank line, then the text.

    Raises TypeError or ValueError for arguments that C cannot receive unchanged: a
    non-integer port, a port outside the C int range, or text containing NUL.
    """
    if not isinstance(port, int) or isinstance(port, bool):
        raise TypeError("port must be int, not {}".format(type(port).__name__))
    if not _C_INT_MIN <= port <= _C_INT_MAX:
        # ctypes would silently wrap this value, for example 2**32 + 25 to 25.
        raise ValueError("port {} is out of range 0..65535".format(port))

    return library.smtp_send(
        _to_c_string(host, "host"),
        port,
        _to_c_string(helo, "helo"),
        _to_c_string(sender, "sender"),
        _recipients_to_c_string(to),
        _to_c_string(body, "body"),
    )


def _option_value_to_c_string(value: Optional[OptionValue], argument: str) -> Optional[bytes]:
    """Convert an option value to bytes: an int as its decimal text, a bool as "1" or "0"."""
    # bool is checked first because it is a subclass of int.
    if isinstance(value, bool):
        return b"1" if value else b"0"
    if isinstance(value, int):
        return str(value).encode("ascii")
    if value is not None and not isinstance(value, (str, bytes, bytearray)):
        raise TypeError("{} must be str, bytes, int or bool, not {}".format(argument, type(value).__name__))
    return _to_c_string(value, argument)


def set_option(name: Text, value: Union[OptionValue, None]) -> int:
    """Set a process-wide default with smtp_set_option() and return its status code.

    The option names are listed at smtp_set_option in include/mvsmtp.h, for example
    "timeout" (whole seconds, 1..3600, default 30), "tls", "user" and "profile". An int
    value is passed as its decimal text, a bool as "1" or "0", and "" restores the default.
    """
    return library.smtp_set_option(_to_c_string(name, "name"), _option_value_to_c_string(value, "value"))


def _check_option_entry(data: bytes, argument: str) -> bytes:
    """Raise ValueError when ``data`` contains a byte that would end its entry in the options list."""
    for separator, description in _OPTION_SEPARATORS:
        if separator in data:
            # The text is not shown, because it may be a password.
            advice = "Set such a value with set_option() instead." if separator in _ATTRIBUTE_MARKS else "Remove it."
            raise ValueError(
                "{} contains {}, which would end the entry and start another option in the "
                "options list. {}".format(argument, description, advice)
            )
    return data


def _option_value_entry(name: Text, value: Optional[OptionValue]) -> bytes:
    """Convert one option value of a mapping to bytes and check that it stays one entry."""
    argument = "the value of option {!r}".format(name)
    value_bytes = _option_value_to_c_string(value, argument)
    if value_bytes is None:
        raise TypeError("{} must be str, bytes, int or bool, not None".format(argument))
    return _check_option_entry(value_bytes, argument)


def _option_entry_values(name: Text, name_bytes: bytes, value) -> list:
    """Return the values of the entries that one ``name: value`` pair of a mapping becomes.

    A list or tuple is allowed for the options that take several items. Each "header"
    item becomes an entry of its own. The addresses of "cc", "bcc" or "reply_to" are
    joined with "," into one entry, because a second entry would replace the first.
    """
    if not isinstance(value, (list, tuple)):
        return [_option_value_entry(name, value)]

    key = name_bytes.strip().lower()
    items = [_option_value_entry(name, item) for item in value]
    if key in _REPEATABLE_OPTIONS:
        return items
    if key in _ADDRESS_LIST_OPTIONS:
        return [b",".join(items)]
    raise TypeError(
        "the value of option {!r} is a {}, but only header, cc, bcc and reply_to take a list. "
        "Pass one str, bytes, int or bool.".format(name, type(value).__name__)
    )


def _options_to_c_string(options: Options) -> Optional[bytes]:
    """Convert the options of send_with() to the newline-separated list that smtp_send_with() takes."""
    if options is None:
        return None
    if isinstance(options, (str, bytes, bytearray)):
        # A ready-made list: its line breaks and attribute marks separate the entries.
        return _to_c_string(options, "options")

    lines = []
    if isinstance(options, collections.abc.Mapping):
        for name, value in options.items():
            name_bytes = _to_c_string(name, "option name")
            if name_bytes is None or name_bytes.strip() == b"":
                raise ValueError("an option name is empty. Use the names listed at smtp_set_option in include/mvsmtp.h.")
            if b"=" in name_bytes:
                raise ValueError(
                    "option name {!r} contains '=', which would end the name in the options list. "
                    "Use the names listed at smtp_set_option in include/mvsmtp.h.".format(name)
                )
            _check_option_entry(name_bytes, "option name {!r}".format(name))

            for value_bytes in _option_entry_values(name, name_bytes, value):
                lines.append(name_bytes + b"=" + value_bytes)
    elif isinstance(options, (list, tuple)):
        for index, line in enumerate(options):
            line_bytes = _to_c_string(line, "options[{}]".format(index))
            if line_bytes is None:
                raise TypeError("options must not contain None")
            lines.append(_check_option_entry(line_bytes, "options[{}]".format(index)))
    else:
        raise TypeError(
            "options must be a dict, a list or tuple of \"name=value\" lines, str, bytes or None, "
            "not {}".format(type(options).__name__)
        )
    return b"\n".join(lines)


def send_with(options: Options, sender: Text, to: Union[Text, Sequence[Text]], body: Text) -> int:
    """Send one message with smtp_send_with() and return its status code (SMTP_OK on success).

    ``options`` sets the server, TLS, credentials and other options for this call only,
    on top of the defaults from set_option() and any profile named by the option
    "profile". It is one of:

    - a dict or other mapping ``{name: value}``, where a value is str, bytes, int or bool
      (True becomes "1" and False "0"). The options "header", "cc", "bcc" and "reply_to"
      of send_message() also take a list: each header becomes an entry of its own, and
      the addresses are joined with ",";
    - a list or tuple of ``"name=value"`` lines, each str or bytes;
    - a str or bytes that is already an options list, passed unchanged, so its line
      breaks and attribute marks separate the entries and nothing in it is checked;
    - None for no options.

    The option names are those of smtp_set_option in include/mvsmtp.h, and "host" must be
    set here, by set_option() or in a profile. ``sender``, ``to`` and ``body`` are as for
    send().

    Raises ValueError before calling the library when an option name or value in a
    mapping, or a line in a list, contains CR, LF, NUL or an attribute mark. The library
    would end the entry at that character and read the rest as another option.
    Raises TypeError for an options argument or value of another type.
    """
    return library.smtp_send_with(
        _options_to_c_string(options),
        _to_c_string(sender, "sender"),
        _recipients_to_c_string(to),
        _to_c_string(body, "body"),
    )


# Labels of UTF-8 in the WHATWG Encoding Standard, which the library uses to look up the
# "charset" option.
_UTF8_LABELS = frozenset(
    ("utf-8", "utf8", "unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "x-unicode20utf8")
)

# Line breaks and attribute marks, which end an entry of an options list in the library.
_OPTION_LINE_BREAK = re.compile(b"\r\n|\r|\n|\xfe|\xef\xa3\xbe")

# Bytes that separate attachments (attribute marks), their fields (value marks) and the
# lines of in-memory content (subvalue marks) in the attachments argument, as 8-bit bytes
# and as U+F8FC..U+F8FE in UTF-8. NUL ends the C string.
_ATTACHMENT_DELIMITERS = (
    (b"\x00", "a NUL character"),
    (b"\xfe", "an attribute mark (byte 0xFE)"),
    (b"\xfd", "a value mark (byte 0xFD)"),
    (b"\xfc", "a subvalue mark (byte 0xFC)"),
    ("\uf8fe".encode("utf-8"), "an attribute mark (U+F8FE)"),
    ("\uf8fd".encode("utf-8"), "a value mark (U+F8FD)"),
    ("\uf8fc".encode("utf-8"), "a subvalue mark (U+F8FC)"),
)

_ATTACHMENT_KEYS = ("path", "data", "name", "type")

AttachmentPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Attachment = Union[AttachmentPath, Tuple[Optional[AttachmentPath], ...], Mapping[str, object]]


def _charset_of(options: Optional[bytes]) -> Optional[str]:
    """Return the lower-case value of the last "charset" entry in an options list, or None.

    An empty value restores the default, UTF-8. None means that the list does not set the
    option, so the default from set_option() or a profile applies.
    """
    charset = None
    for line in _OPTION_LINE_BREAK.split(options or b""):
        name, equals, value = line.partition(b"=")
        if equals and name.strip(b" \t").lower() == b"charset":
            charset = value.strip(b" \t").decode("ascii", errors="replace").lower() or "utf-8"
    return charset


def _message_text(value: Optional[Text], argument: str, charset: Optional[str]) -> Optional[bytes]:
    """Convert a text argument of send_message(), rejecting str that the charset would garble.

    str is always encoded as UTF-8, and the library decodes text in the "charset" option,
    so non-ASCII str with charset=ISO-8859-1 would arrive as mojibake.
    """
    if isinstance(value, str) and charset is not None and charset not in _UTF8_LABELS and not value.isascii():
        raise ValueError(
            "{} is a str with non-ASCII characters, which this module passes as UTF-8, but the "
            "options set charset={}. Pass it as bytes in that character set, or remove the charset "
            "option.".format(argument, charset)
        )
    return _to_c_string(value, argument)


def _check_attachment_field(data: bytes, argument: str) -> bytes:
    """Raise ValueError when a path, file name or content type contains a delimiter or line break."""
    line_breaks = ((b"\r", "a carriage return (CR)"), (b"\n", "a line feed (LF)"))
    for delimiter, description in _ATTACHMENT_DELIMITERS + line_breaks:
        if delimiter in data:
            raise ValueError(
                "{} contains {}, which would split the attachments argument in the wrong place. "
                "Remove it.".format(argument, description)
            )
    return data


def _attachment_field(value: Optional[AttachmentPath], argument: str, charset: Optional[str]) -> bytes:
    """Convert a path, file name or content type to bytes. None and "" become b"", the default."""
    if value is None:
        return b""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            # Undecodable file names come back from os.listdir() as lone surrogates.
            raise ValueError(
                "{} cannot be encoded as UTF-8 ({}), and the library opens files by UTF-8 "
                "names. Rename the file, or copy it to a name that is valid UTF-8.".format(argument, error)
            ) from error
    data = _message_text(value, argument, charset)
    return _check_attachment_field(data, argument)


def _attachment_content(data: Union[str, bytes, bytearray, memoryview], argument: str) -> bytes:
    """Convert in-memory content to bytes whose line breaks are subvalue marks.

    The library turns each subvalue mark back into CRLF. Content is never decoded from the
    charset option: str is encoded as UTF-8, and bytes pass unchanged.
    """
    if isinstance(data, str):
        content = data.encode("utf-8")
    elif isinstance(data, (bytes, bytearray, memoryview)):
        content = bytes(data)
    else:
        raise TypeError("{} must be str or bytes, not {}".format(argument, type(data).__name__))

    advice = "Write binary data to a file and attach the file's path instead."
    for delimiter, description in _ATTACHMENT_DELIMITERS:
        if delimiter in content:
            raise ValueError(
                "{} contains {}, which the attachments argument cannot carry. {}".format(argument, description, advice)
            )

    content = content.replace(b"\r\n", SUBVALUE_MARK).replace(b"\n", SUBVALUE_MARK)
    if b"\r" in content:
        raise ValueError(
            "{} contains a carriage return (CR) without a line feed, which the attachments argument "
            "cannot carry. Use LF or CRLF line breaks, or write the data to a file and attach the file's "
            "path.".format(argument)
        )
    return content


def _attachment_entry(item: Attachment, index: int, charset: Optional[str]) -> bytes:
    """Convert one item of the attachments list to its attribute: path, name, type and content."""
    argument = "attachments[{}]".format(index)
    content = None

    if isinstance(item, (str, bytes, bytearray, os.PathLike)):
        path, name, content_type = item, None, None
    elif isinstance(item, tuple):
        if not 1 <= len(item) <= 3:
            raise ValueError(
                "{} is a tuple of {} items. Write it as (path,), (path, name) or (path, name, type).".format(
                    argument, len(item)
                )
            )
        path, name, content_type = tuple(item) + (None,) * (3 - len(item))
    elif isinstance(item, collections.abc.Mapping):
        unknown = [key for key in item if key not in _ATTACHMENT_KEYS]
        if unknown:
            raise ValueError(
                "{} has the unknown key(s) {}. Use {}.".format(
                    argument, ", ".join(repr(key) for key in unknown), ", ".join(_ATTACHMENT_KEYS)
                )
            )
        has_path = item.get("path") is not None
        has_data = item.get("data") is not None
        if has_path == has_data:
            raise ValueError(
                "{} needs exactly one of \"path\" (a file to attach) and \"data\" (the content "
                "itself).".format(argument)
            )
        path, name, content_type = item.get("path"), item.get("name"), item.get("type")
        if has_data:
            content = _attachment_content(item["data"], "the data of {}".format(argument))
    else:
        raise TypeError(
            "{} must be a path (str, bytes or os.PathLike), a tuple (path, name, type) or a dict, "
            "not {}".format(argument, type(item).__name__)
        )

    if content is None and not isinstance(path, (str, bytes, bytearray, os.PathLike)):
        raise TypeError(
            "the path of {} must be str, bytes or os.PathLike, not {}".format(argument, type(path).__name__)
        )
    path_bytes = _attachment_field(path, "the path of {}".format(argument), charset)
    if content is None and path_bytes.strip(b" ") == b"":
        # The library skips an attachment that is blank, so it would vanish without an error.
        raise ValueError("the path of {} is empty. Give the file to attach.".format(argument))

    fields = [
        path_bytes,
        _attachment_field(name, "the file name of {}".format(argument), charset),
        _attachment_field(content_type, "the content type of {}".format(argument), charset),
    ]
    if content is not None:
        fields.append(content)
    return VALUE_MARK.join(fields)


def _attachments_to_c_string(attachments: Optional[Sequence[Attachment]], charset: Optional[str]) -> Optional[bytes]:
    """Convert the attachments of send_message() to a dynamic array, one attachment per attribute."""
    if attachments is None:
        return None
    if not isinstance(attachments, list):
        raise TypeError(
            "attachments must be a list or None, not {}. Wrap a single attachment in a list.".format(
                type(attachments).__name__
            )
        )
    return ATTRIBUTE_MARK.join(_attachment_entry(item, index, charset) for index, item in enumerate(attachments))


def send_message(
    options: Options,
    sender: Text,
    to: Union[Text, Sequence[Text]],
    subject: Text,
    body: Text,
    attachments: Optional[Sequence[Attachment]] = None,
) -> int:
    """Compose a MIME message, send it with smtp_send_message() and return its status code.

    ``options`` is as for send_with(), plus the message options listed at smtp_set_option
    in include/mvsmtp.h: "cc", "bcc", "reply_to", "charset", "html_file", "body_type" and
    "header". Each "header" value is one "Name: value" line, and a list adds several.

    ``sender`` is ``user@example.com`` or ``Name <user@example.com>``. ``to`` is as for
    send(), and may be "" when "cc" or "bcc" names the recipients. ``subject`` is one
    line, and ``body`` is the text, or the HTML with body_type=html. The library adds
    Date, Message-ID and MIME-Version, and encodes every part so that no line exceeds
    998 octets.

    ``attachments`` is None or a list whose items are one of:

    - a path (str, bytes or os.PathLike) of a file to attach;
    - a tuple ``(path, name, type)``, where the file name shown to the reader and the
      content type may be left out or None. The name defaults to the last part of the
      path, and the type is guessed from the name;
    - a dict ``{"path": path, "name": name, "type": type}`` or, for content held in
      memory, ``{"data": text, "name": name, "type": type}``. The data is str (encoded as
      UTF-8) or bytes, and its line breaks (LF or CRLF) are sent as CRLF.

    With "charset" set to an 8-bit character set such as ISO-8859-1, pass every text
    argument as bytes in that character set. The check for str arguments reads the charset
    from ``options`` only, not from set_option() or a profile, and it skips option values
    and attachment data.

    Raises ValueError before calling the library when an argument cannot be passed
    unchanged. That is NUL anywhere, or a line break or MultiValue mark (bytes 0xFC to
    0xFE, U+F8FC to U+F8FE) in a path, name or type. In attachment data, a mark or a bare
    CR raises too, so write binary data to a file and attach its path. An empty path
    raises, and so does a str with non-ASCII characters while the options set a charset
    other than UTF-8. Raises TypeError for arguments of another type.

    Returns SMTP_MESSAGE_TOO_LARGE, without sending, when the server announces a SIZE
    limit below the size of the message.
    """
    options_bytes = _options_to_c_string(options)
    charset = _charset_of(options_bytes)
    return library.smtp_send_message(
        options_bytes, *_message_arguments(charset, sender, to, subject, body, attachments)
    )


def _message_arguments(
    charset: Optional[str],
    sender: Text,
    to: Union[Text, Sequence[Text]],
    subject: Text,
    body: Text,
    attachments: Optional[Sequence[Attachment]],
) -> Tuple[Optional[bytes], ...]:
    """Convert the sender, to, subject, body and attachments of send_message(), checking str against ``charset``."""
    if isinstance(to, (list, tuple)):
        for index, address in enumerate(to):
            _message_text(address, "to[{}]".format(index), charset)
    else:
        _message_text(to, "to", charset)

    return (
        _message_text(sender, "sender", charset),
        _recipients_to_c_string(to),
        _message_text(subject, "subject", charset),
        _message_text(body, "body", charset),
        _attachments_to_c_string(attachments, charset),
    )


def last_error() -> str:
    """Return the error line of this thread's last call, or "" after a success."""
    # Ask for the length first, then fetch into a buffer of exactly that size plus the NUL.
    # Both calls run on this thread, so no other call can change the text in between.
    length = library.smtp_last_error(None, 0)
    if length <= 0:
        return ""
    buffer = ctypes.create_string_buffer(length + 1)
    library.smtp_last_error(buffer, len(buffer))
    return _from_c_string(buffer.raw[:length])


def last_reply_code() -> int:
    """Return the SMTP reply code that decided this thread's last send, or 0 if there was none."""
    return library.smtp_last_reply_code()


def last_transcript() -> str:
    """Return the SMTP conversation of this thread's last send, one line per command or reply.

    Lines start with "C: " for sent, "S: " for received or "* " for notes such as the
    address connected to. The message body appears only as its size, never as its text.
    """
    # ctypes copies the library-owned text into a bytes object before the next call can
    # replace it, so the result stays valid.
    return _from_c_string(library.smtp_last_transcript_text())


def version() -> str:
    """Return the library version, for example "0.1.0"."""
    return _from_c_string(library.smtp_version())


def status_name(status: int) -> str:
    """Return the name of a status code, for example "SMTP_TIMEOUT", or "SMTP_UNKNOWN_STATUS"."""
    if not _C_INT_MIN <= status <= _C_INT_MAX:
        return "SMTP_UNKNOWN_STATUS"
    return _from_c_string(library.smtp_status_name(status))


class SmtpError(Exception):
    """Failed send, with the status code, its name, the SMTP reply code and the error line."""

    def __init__(self, status: int, reply_code: int, message: str) -> None:
        self.status = status
        self.status_name = status_name(status)
        self.reply_code = reply_code
        self.message = message
        super().__init__(status, reply_code, message)

    def __str__(self) -> str:
        text = self.status_name
        if self.reply_code:
            text += " (reply {})".format(self.reply_code)
        if self.message:
            text += ": " + self.message
        return text


def _raise_unless_ok(status: int) -> None:
    """Raise SmtpError with this thread's reply code and last error unless ``status`` is SMTP_OK."""
    if status != SMTP_OK:
        raise SmtpError(status, last_reply_code(), last_error())


def send_or_raise(
    host: Text,
    port: int,
    helo: Optional[Text],
    sender: Text,
    to: Union[Text, Sequence[Text]],
    body: Text,
) -> None:
    """Send one message like send(), and raise SmtpError for any status other than SMTP_OK.

    SMTP_PARTIAL raises too, although the message was delivered to the accepted recipients.
    """
    _raise_unless_ok(send(host, port, helo, sender, to, body))


def send_with_or_raise(options: Options, sender: Text, to: Union[Text, Sequence[Text]], body: Text) -> None:
    """Send one message like send_with(), and raise SmtpError for any status other than SMTP_OK.

    SMTP_PARTIAL raises too, although the message was delivered to the accepted recipients.
    """
    _raise_unless_ok(send_with(options, sender, to, body))


def send_message_or_raise(
    options: Options,
    sender: Text,
    to: Union[Text, Sequence[Text]],
    subject: Text,
    body: Text,
    attachments: Optional[Sequence[Attachment]] = None,
) -> None:
    """Send one message like send_message(), and raise SmtpError for any status other than SMTP_OK.

    SMTP_PARTIAL raises too, although the message was delivered to the accepted recipients.
    """
    _raise_unless_ok(send_message(options, sender, to, subject, body, attachments))


# Sessions: one connection for many messages


def open_session(options: Options) -> "Session":
    """Open a session with smtp_open(): connect, greet, start TLS and log in once.

    ``options`` is as for send_with(), and sets the server, TLS, credentials and the
    other options of every message sent on the session. Message options such as "cc" or
    "charset" given here apply to every composed message.

    Returns a Session, which sends each message on the open connection. Close it with
    close(), or use it in a ``with`` statement. Raises SmtpError when the session cannot
    be opened, for example with status SMTP_CONNECT_FAILED or SMTP_AUTH_FAILED, and
    ValueError or TypeError as send_with() does.
    """
    options_bytes = _options_to_c_string(options)
    session_id = library.smtp_open(options_bytes)
    if session_id < 0:
        raise SmtpError(-session_id, last_reply_code(), last_error())
    session = Session(session_id)
    session._charset = _charset_of(options_bytes)
    return session


class Session:
    """Open SMTP connection that sends several messages, from open_session().

    Each call returns a status and sets this thread's last error, reply code and
    transcript, as the module's functions do. After a failed message the session stays
    usable. When the server has closed an idle connection, the next message reconnects
    once. Every thread may use a session: the library runs calls on one session one after
    the other, and threads with their own sessions send in parallel.

    The library keeps the connection until close() is called. Nothing closes a session
    when the object is garbage-collected, because that would run smtp_close() at a random
    time and replace the last error of whichever thread happens to run it.

    ``Session(session_id)`` wraps an id that smtp_open() returned elsewhere, for example
    one that BASIC keeps in a variable.
    """

    def __init__(self, session_id: int) -> None:
        if not isinstance(session_id, int) or isinstance(session_id, bool):
            raise TypeError("session_id must be int, not {}".format(type(session_id).__name__))
        if not 0 < session_id <= _C_INT_MAX:
            raise ValueError(
                "session_id {} is invalid, because smtp_open() returns ids from 1 to {}. Pass the id of an "
                "open session.".format(session_id, _C_INT_MAX)
            )
        self._id = session_id
        # The charset option given to open_session(), for the checks of send_message().
        self._charset: Optional[str] = None
        self._closed = False
        self._close_lock = threading.Lock()

    @property
    def id(self) -> int:
        """The session id of the library, greater than 0."""
        return self._id

    @property
    def closed(self) -> bool:
        """True once close() has run on this object."""
        return self._closed

    def __repr__(self) -> str:
        return "<mvsmtp.Session {} {}>".format(self._id, "closed" if self._closed else "open")

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exception) -> None:
        self.close()

    def send(self, sender: Text, to: Union[Text, Sequence[Text]], body: Text) -> int:
        """Send one ready-made message with smtp_session_send() and return its status code.

        ``sender``, ``to`` and ``body`` are as for send(). A closed session returns
        SMTP_INVALID_ARGUMENT.
        """
        return library.smtp_session_send(
            self._id,
            _to_c_string(sender, "sender"),
            _recipients_to_c_string(to),
            _to_c_string(body, "body"),
        )

    def send_or_raise(self, sender: Text, to: Union[Text, Sequence[Text]], body: Text) -> None:
        """Send one message like send(), and raise SmtpError for any status other than SMTP_OK.

        SMTP_PARTIAL raises too, although the message was delivered to the accepted recipients.
        """
        _raise_unless_ok(self.send(sender, to, body))

    def send_message(
        self,
        sender: Text,
        to: Union[Text, Sequence[Text]],
        subject: Text,
        body: Text,
        attachments: Optional[Sequence[Attachment]] = None,
        options: Options = None,
    ) -> int:
        """Compose a MIME message, send it with smtp_session_send_message() and return its status code.

        ``sender``, ``to``, ``subject``, ``body`` and ``attachments`` are as for the
        module's send_message(). ``options`` is None or, in any form that send_with()
        takes, the message options "cc", "bcc", "reply_to", "charset", "html_file",
        "body_type" and "header" for this message only. The server, TLS and credentials
        belong to the session, so setting one of them here returns SMTP_INVALID_ARGUMENT.

        The check for non-ASCII str arguments uses the "charset" of ``options``, else the
        one given to open_session(). Raises ValueError and TypeError as send_message() does.
        """
        options_bytes = _options_to_c_string(options)
        charset = _charset_of(options_bytes)
        if charset is None:
            charset = self._charset
        return library.smtp_session_send_message(
            self._id, options_bytes, *_message_arguments(charset, sender, to, subject, body, attachments)
        )

    def send_message_or_raise(
        self,
        sender: Text,
        to: Union[Text, Sequence[Text]],
        subject: Text,
        body: Text,
        attachments: Optional[Sequence[Attachment]] = None,
        options: Options = None,
    ) -> None:
        """Send one message like send_message(), and raise SmtpError for any status other than SMTP_OK.

        SMTP_PARTIAL raises too, although the message was delivered to the accepted recipients.
        """
        _raise_unless_ok(self.send_message(sender, to, subject, body, attachments, options))

    def close(self) -> int:
        """End the session with smtp_close(), which sends QUIT, and return its status code.

        A second call returns SMTP_OK without calling the library. SMTP_INVALID_ARGUMENT
        means that the library did not know the id, because another Session object for the
        same id had closed it.
        """
        with self._close_lock:
            if self._closed:
                return SMTP_OK
            self._closed = True
        return library.smtp_close(self._id)
