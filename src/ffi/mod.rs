//! The C interface: every exported `smtp_*` function. This layer only turns pointers into
//! byte slices, runs each body inside the panic guard, and stores each call's result for the
//! calling thread. Everything else happens in the engine, which has no C types.

pub mod calls;
pub mod diagnostics;
mod guard;
pub mod sessions;
pub mod status;

use std::ffi::{c_char, c_int, CStr};

use crate::request::RawRequest;

/// Reads a C string argument as bytes. NULL becomes `None`.
///
/// # Safety
/// `pointer` must be NULL or point to a NUL-terminated string that stays valid, unchanged,
/// for `'a`.
unsafe fn bytes_of<'a>(pointer: *const c_char) -> Option<&'a [u8]> {
    if pointer.is_null() {
        None
    } else {
        // SAFETY: checked for NULL above; the caller guarantees the rest.
        Some(unsafe { CStr::from_ptr(pointer) }.to_bytes())
    }
}

/// Reads the arguments of a composed message.
///
/// # Safety
/// Each pointer must be NULL or point to a NUL-terminated string that stays valid for `'a`.
unsafe fn message_arguments<'a>(
    from: *const c_char,
    to: *const c_char,
    subject: *const c_char,
    body: *const c_char,
    attachments: *const c_char,
) -> calls::MessageArguments<'a> {
    // SAFETY: the caller guarantees each pointer is NULL or a valid C string.
    unsafe {
        calls::MessageArguments {
            from: bytes_of(from),
            to: bytes_of(to),
            subject: bytes_of(subject),
            body: bytes_of(body),
            attachments: bytes_of(attachments),
        }
    }
}

/// Sends one message and waits for the result.
///
/// - `host`: the mail server's host name or IP address (IPv6 included, with or without
///   brackets). Every address that the name resolves to is tried in order. Several hosts
///   separated by commas are tried in turn, as for the `host` option.
/// - `port`: 1 to 65535, or 0 for 25.
/// - `helo`: the name to give in EHLO or HELO. NULL or "" uses this machine's host name, or an
///   address literal such as `[192.0.2.1]` when the host name is not a valid domain name.
/// - `from`: the envelope sender, as `user@example.com` or `Name <user@example.com>`. ""
///   sends the null sender `<>`, as bounces do.
/// - `to`: one or more recipients separated by `,`, `;` or a value mark (byte 0xFD, or
///   U+F8FD in UTF-8). Each may be `Name <user@example.com>`; only the address is used.
/// - `body`: the message as it goes after DATA: headers, a blank line, then the text. Every
///   line ending (CRLF, LF or CR) and every attribute mark (byte 0xFE, or U+F8FE in UTF-8)
///   is sent as CRLF, lines starting with "." are dot-stuffed, and a final CRLF is added
///   when missing.
///
/// Returns `SMTP_OK` when every recipient was accepted, `SMTP_PARTIAL` when some were, or
/// another status. No connection is made when an argument is invalid. The details of the
/// call are available from `smtp_last_error`, `smtp_last_reply_code` and
/// `smtp_last_transcript` on the same thread.
///
/// # Safety
/// Each pointer must be NULL or point to a NUL-terminated string that stays valid for the
/// duration of the call.
#[no_mangle]
pub unsafe extern "C" fn smtp_send(
    host: *const c_char,
    port: c_int,
    helo: *const c_char,
    from: *const c_char,
    to: *const c_char,
    body: *const c_char,
) -> c_int {
    guard::status_call(|| {
        // SAFETY: the caller guarantees each pointer is NULL or a valid C string.
        let (host, helo, raw) = unsafe { (bytes_of(host), bytes_of(helo), RawRequest { from: bytes_of(from), to: bytes_of(to), body: bytes_of(body) }) };
        calls::send(host, i64::from(port), helo, raw)
    })
}

/// Sends one message with options given for this call, and waits for the result.
///
/// `options` is a list of `name=value` entries, one per line. Lines may be separated by LF,
/// CRLF or attribute marks (byte 0xFE, or U+F8FE in UTF-8), so BASIC can build the list as
/// a dynamic array. The first `=` ends the name, so a value may contain `=`, `;` and spaces,
/// but no line break or attribute mark.
/// NULL or "" means no options. The names are those of `smtp_set_option`, and `host` must
/// be set here, in the defaults or in a profile. `profile=NAME` loads the named block of
/// the configuration file first, and the other entries here override it. Entries here
/// override the process-wide defaults for this call only.
///
/// `from`, `to` and `body` are as for `smtp_send`. Returns a status as `smtp_send` does.
///
/// # Safety
/// Each pointer must be NULL or point to a NUL-terminated string that stays valid for the
/// duration of the call.
#[no_mangle]
pub unsafe extern "C" fn smtp_send_with(options: *const c_char, from: *const c_char, to: *const c_char, body: *const c_char) -> c_int {
    guard::status_call(|| {
        // SAFETY: the caller guarantees each pointer is NULL or a valid C string.
        let (options, raw) = unsafe { (bytes_of(options), RawRequest { from: bytes_of(from), to: bytes_of(to), body: bytes_of(body) }) };
        calls::send_with(options, raw)
    })
}

/// Composes a MIME message from its parts and sends it, and waits for the result.
///
/// - `options`: as for `smtp_send_with`, plus the message options `cc`, `bcc`, `reply_to`,
///   `charset`, `html_file`, `body_type` and `header` (see `smtp_set_option`).
/// - `from`: the sender, `user@example.com` or `Name <user@example.com>`; the name goes into
///   the From header.
/// - `to`: the To recipients, separated by `,`, `;` or value marks, each optionally with a
///   display name. It may be "" when `cc` or `bcc` names recipients. Bcc recipients get the
///   message but appear in no header.
/// - `subject`: one line of text.
/// - `body`: the text of the message (or its HTML with `body_type=html`). Attribute marks
///   become line breaks, so a dynamic array of lines works.
/// - `attachments`: NULL or "" for none, else one attachment per attribute (attribute mark
///   or LF), each with up to four values separated by value marks: the file path, the file
///   name to show (default: the path's last part), the content type (default: guessed from
///   the name), and, when the path is empty, the content itself, whose subvalue marks become
///   line breaks.
///
/// Text is decoded from `charset` (default UTF-8) and sent as UTF-8 in quoted-printable or
/// base64, so no line exceeds 998 octets. The message gets Date, a unique Message-ID on the
/// sender's domain, and MIME-Version headers. Returns a status as `smtp_send` does.
///
/// # Safety
/// Each pointer must be NULL or point to a NUL-terminated string that stays valid for the
/// duration of the call.
#[no_mangle]
pub unsafe extern "C" fn smtp_send_message(
    options: *const c_char,
    from: *const c_char,
    to: *const c_char,
    subject: *const c_char,
    body: *const c_char,
    attachments: *const c_char,
) -> c_int {
    guard::status_call(|| {
        // SAFETY: the caller guarantees each pointer is NULL or a valid C string.
        let (options, arguments) = unsafe { (bytes_of(options), message_arguments(from, to, subject, body, attachments)) };
        calls::send_message(options, arguments)
    })
}

/// Opens a session for sending several messages on one connection: it connects, greets,
/// starts TLS and authenticates once. `options` is a list as for `smtp_send_with` (`host`
/// is required there, in the defaults or in a profile). Returns a session id greater than
/// 0, or a negative status, such as `-SMTP_CONNECT_FAILED`.
///
/// Every thread may use a session; calls on one session run one after the other.
///
/// # Safety
/// `options` must be NULL or point to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn smtp_open(options: *const c_char) -> c_int {
    // A panic is reported as the negative internal-error status, like any failed open.
    let mut finished = false;
    let id = guard::status_call(|| {
        // SAFETY: the caller guarantees the pointer is NULL or a valid C string.
        let id = sessions::open(unsafe { bytes_of(options) });
        finished = true;
        id
    });
    if finished {
        id
    } else {
        -status::SMTP_INTERNAL_ERROR
    }
}

/// Sends one ready-made message on a session opened by `smtp_open`, with `from`, `to` and
/// `body` as for `smtp_send`. After a failed message the session sends RSET and stays
/// usable. When the server has closed the connection since the last message, the session
/// reconnects once. Returns a status; an unknown or closed session is
/// `SMTP_INVALID_ARGUMENT`.
///
/// # Safety
/// Each pointer must be NULL or point to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_send(session: c_int, from: *const c_char, to: *const c_char, body: *const c_char) -> c_int {
    guard::status_call(|| {
        // SAFETY: the caller guarantees each pointer is NULL or a valid C string.
        let raw = unsafe { RawRequest { from: bytes_of(from), to: bytes_of(to), body: bytes_of(body) } };
        sessions::send(session, raw)
    })
}

/// Composes a MIME message and sends it on a session opened by `smtp_open`, with `from`,
/// `to`, `subject`, `body` and `attachments` as for `smtp_send_message`. `options` may be
/// NULL or "", or set the message options `cc`, `bcc`, `reply_to`, `charset`, `html_file`,
/// `body_type` and `header` for this message only, on top of the session's options. The
/// server, TLS and credentials belong to the session, so setting them here is
/// `SMTP_INVALID_ARGUMENT`. Returns a status as `smtp_session_send` does.
///
/// # Safety
/// Each pointer must be NULL or point to a NUL-terminated string that stays valid for the
/// duration of the call.
#[no_mangle]
pub unsafe extern "C" fn smtp_session_send_message(
    session: c_int,
    options: *const c_char,
    from: *const c_char,
    to: *const c_char,
    subject: *const c_char,
    body: *const c_char,
    attachments: *const c_char,
) -> c_int {
    guard::status_call(|| {
        // SAFETY: the caller guarantees each pointer is NULL or a valid C string.
        let (options, arguments) = unsafe { (bytes_of(options), message_arguments(from, to, subject, body, attachments)) };
        sessions::send_message(session, options, arguments)
    })
}

/// Ends a session with QUIT and frees its id. Returns `SMTP_OK`, or
/// `SMTP_INVALID_ARGUMENT` for an unknown or already closed session.
#[no_mangle]
pub extern "C" fn smtp_close(session: c_int) -> c_int {
    guard::status_call(|| sessions::close(session))
}

/// Sets a process-wide default for later calls from every thread. Calls already running
/// keep the settings they started with. A value of "" restores the option's default.
/// Option names are not case-sensitive.
///
/// - `host`, `port`, `helo`: the server and the EHLO name, for `smtp_send_with`. `host` may
///   list up to 10 hosts separated by commas; the next is tried when one cannot be reached
///   or its greeting rejects the session.
/// - `timeout`: whole seconds from 1 to 3600 (default 30). It bounds name resolution,
///   connecting, the TLS handshake, and each wait for a reply or a write.
/// - `tls`: `none`, `starttls` (required), `implicit` or `opportunistic`. The default is
///   `implicit` on port 465, `starttls` on 587, and on other ports `starttls` when
///   credentials are set and `none` otherwise.
/// - `tls_ca_file`: a PEM file of CA certificates trusted besides the system's.
/// - `tls_server_name`: the name the server certificate must carry, when it differs from host.
/// - `tls_insecure`: 1 turns certificate verification off. Anyone on the path can then read
///   and change the mail.
/// - `user`, `password`, `oauth_token`: credentials for AUTH.
/// - `auth`: `auto` (default), `PLAIN`, `LOGIN`, `CRAM-MD5` or `XOAUTH2`.
/// - `insecure_plaintext_auth`: 1 allows credentials without TLS.
/// - `pipelining`: 0 sends one command at a time even when the server offers PIPELINING.
/// - `chunking`: 0 sends the message with DATA even when the server offers CHUNKING (BDAT).
/// - `log_file`: a file that gets one audit line per message.
/// - `profile`: a named block of options in the configuration file.
/// - `cc`, `bcc`, `reply_to`: address lists for `smtp_send_message`.
/// - `charset`: the character set of text given to `smtp_send_message`, such as UTF-8
///   (default) or ISO-8859-1 for a system without NLS.
/// - `html_file`: a file whose HTML becomes an alternative to the text body.
/// - `body_type`: `text` (default) or `html`, what the body argument holds.
/// - `header`: one extra header line `Name: value`; each setting adds one, and "" removes
///   them all.
///
/// Returns `SMTP_OK`, or `SMTP_INVALID_ARGUMENT` for an unknown name, a bad value or a NULL
/// argument; `smtp_last_error` then names the problem.
///
/// # Safety
/// Each pointer must be NULL or point to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn smtp_set_option(name: *const c_char, value: *const c_char) -> c_int {
    guard::status_call(|| {
        // SAFETY: the caller guarantees each pointer is NULL or a valid C string.
        let (name, value) = unsafe { (bytes_of(name), bytes_of(value)) };
        calls::set_option(name, value)
    })
}

/// Returns the code of the reply that decided the calling thread's last call: the reply to
/// the end of data on success, the refusing reply on failure, and for `SMTP_PARTIAL` the
/// reply that refused the first rejected recipient. Returns 0 when no reply decided it, as
/// after an invalid argument, a connection failure or a timeout.
#[no_mangle]
pub extern "C" fn smtp_last_reply_code() -> c_int {
    guard::value_call(0, diagnostics::last_reply_code)
}

/// Copies the calling thread's last error into `buffer` as one line, NUL-terminated and cut
/// to fit at a character boundary. The line names the failed step, the server's reply with
/// its enhanced status code (such as 5.1.1), any refused recipients, and what to do next.
/// It is "" after a success.
///
/// Returns the full length of the line without the NUL, even when the buffer is too small,
/// so a caller can retry with a larger buffer. With a NULL `buffer` or a `size` below 1,
/// nothing is written and only the length is returned.
///
/// # Safety
/// `buffer` must be NULL or point to at least `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_last_error(buffer: *mut c_char, size: c_int) -> c_int {
    // SAFETY: the caller guarantees the buffer and its size.
    guard::value_call(0, || unsafe { diagnostics::copy_last_error(buffer, size) })
}

/// Returns the calling thread's last error as a string owned by the library. It stays valid
/// until the same thread's next call of a function that returns a status or opens a
/// session (`smtp_send`, `smtp_send_with`, `smtp_send_message`, `smtp_open`,
/// `smtp_session_send`, `smtp_session_send_message`, `smtp_close`, `smtp_set_option`).
/// Never free it.
/// For callers that cannot pass output buffers, such as UniData CALLC.
#[no_mangle]
pub extern "C" fn smtp_last_error_text() -> *const c_char {
    guard::value_call(c"".as_ptr(), diagnostics::last_error_ptr)
}

/// Copies the calling thread's last transcript into `buffer`, like `smtp_last_error`. The
/// transcript has one line per command or reply line, separated by LF: `C: ` lines were
/// sent, `S: ` lines were received, and `* ` lines are notes such as the address connected
/// to. The message body appears only as its size, such as `C: <message body, 1234 bytes>`.
///
/// Returns the full length without the NUL.
///
/// # Safety
/// `buffer` must be NULL or point to at least `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn smtp_last_transcript(buffer: *mut c_char, size: c_int) -> c_int {
    // SAFETY: the caller guarantees the buffer and its size.
    guard::value_call(0, || unsafe { diagnostics::copy_last_transcript(buffer, size) })
}

/// Returns the calling thread's last transcript as a string owned by the library, valid
/// until the same thread's next call of a function that returns a status or opens a
/// session, as for `smtp_last_error_text`. Never free it.
#[no_mangle]
pub extern "C" fn smtp_last_transcript_text() -> *const c_char {
    guard::value_call(c"".as_ptr(), diagnostics::last_transcript_ptr)
}

/// Returns the library version, such as "0.1.0", as a static string. Never free it.
#[no_mangle]
pub extern "C" fn smtp_version() -> *const c_char {
    const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => c"unknown",
    };
    VERSION.as_ptr()
}

/// Returns the name of a status code, such as "SMTP_TIMEOUT", as a static string, or
/// "SMTP_UNKNOWN_STATUS" for a number that is not a status. Never free it.
#[no_mangle]
pub extern "C" fn smtp_status_name(status: c_int) -> *const c_char {
    guard::value_call(c"SMTP_UNKNOWN_STATUS".as_ptr(), || status::status_name_ptr(status))
}
