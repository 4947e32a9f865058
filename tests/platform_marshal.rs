//! Runs tests/c/platform_marshal.c, which calls the C entry points the way each MultiValue
//! platform passes arguments: UniData CALLC, UniVerse GCI and D3, jBASE DEFCE, and both
//! forms of the MultiValue marks. It then checks what the Postfix test server delivered. Ready
//! messages must arrive byte for byte, and composed ones are checked by their MIME
//! structure and decoded parts.
//!
//! The C program checks the statuses and diagnostics itself. It is compiled with
//! `cc -std=c99 -Wall -Wextra -Werror -pedantic` against include/mvsmtp.h and the
//! libmvsmtp.so that cargo built for this test run (target/<profile>/deps/ or
//! target/<profile>/). The tests need the Postfix test server on
//! MVSMTP_TEST_HOST:MVSMTP_TEST_PORT (default 127.0.0.1:2525). Start it with
//! `tests/postfix/test-server.sh up`.

use std::fs;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

/// Envelope sender of every message. The C program also puts it into the From header.
const SENDER: &str = "platform-marshal@example.test";

/// Time limit for one run of the C program before it is killed.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Time to wait for Postfix to deliver a message after it accepted it.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);

// ------------------------------------------------------------------ tests

#[test]
fn callc_strings_only() {
    let server = require_test_server();
    let work = WorkDir::new("callc");
    let program = compile_program(&work);

    let composed_to = unique_recipient("pm-callc-composed");
    let ready_to = unique_recipient("pm-callc-ready");

    // Every byte value, NUL and the mark bytes included, so the attachment must travel
    // as binary data.
    let attachment: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let attachment_path = work.path.join("ledger.bin");
    fs::write(&attachment_path, &attachment).expect("failed to write the attachment file");

    let run = run_program(
        &work,
        &program,
        &[
            "callc",
            &server.host,
            &server.port.to_string(),
            SENDER,
            &composed_to,
            &ready_to,
            path_text(&attachment_path),
        ],
    );
    run.expect_ok("callc");

    let expected_ready = ready_message(&ready_to, &ready_to, "CALLC ready message");
    assert_same_bytes(
        &delivered_message(&ready_to),
        &expected_ready,
        "the ready message sent through smtp_send_with",
    );

    let message = MimeEntity::parse(&delivered_message(&composed_to));
    check_sender_header(&message);
    let to = message.required_header("To");
    assert!(
        to.contains(&format!("<{composed_to}>")),
        "the To header does not name {composed_to}: {to}"
    );
    assert_eq!(message.required_header("Subject"), "CALLC composed message");
    assert_eq!(message.required_header("MIME-Version"), "1.0");
    assert_eq!(message.media_type(), "multipart/mixed");

    let parts = message.leaf_parts();
    assert_eq!(
        parts.len(),
        2,
        "expected a text part and one attachment, found {}",
        describe_parts(&parts)
    );

    let text = &parts[0];
    assert_eq!(
        text.media_type(),
        "text/plain",
        "first part: {}",
        describe_parts(&parts)
    );
    assert_eq!(
        text.charset().as_deref(),
        Some("utf-8"),
        "charset of the text part"
    );
    assert!(
        text.attachment_name().is_none(),
        "the text part is marked as an attachment"
    );
    assert_same_bytes(
        &lf_endings(&text.decoded_body()),
        b"Dear reader,\n\nthis message was composed from string arguments only.\nRegards",
        "the decoded text of the composed message",
    );

    let file = &parts[1];
    assert_eq!(file.attachment_name().as_deref(), Some("ledger-2024.bin"));
    assert_eq!(
        file.media_type(),
        "application/octet-stream",
        "type guessed from .bin"
    );
    assert_same_bytes(
        &file.decoded_body(),
        &attachment,
        "the decoded file attachment",
    );
}

#[test]
fn gci_caller_buffers() {
    let server = require_test_server();
    let work = WorkDir::new("gci");
    let program = compile_program(&work);

    let recipient = unique_recipient("pm-gci");
    let run = run_program(
        &work,
        &program,
        &[
            "gci",
            &server.host,
            &server.port.to_string(),
            SENDER,
            &recipient,
        ],
    );
    run.expect_ok("gci");

    assert_same_bytes(
        &delivered_message(&recipient),
        &ready_message(&recipient, &recipient, "GCI ready message"),
        "the ready message sent through smtp_send",
    );
}

#[test]
fn marks_both_forms_deliver_same() {
    let server = require_test_server();
    let work = WorkDir::new("marks");
    let program = compile_program(&work);

    let forms: Vec<MarksRun> = ["8bit", "utf8"]
        .into_iter()
        .map(|form| {
            let recipients = MarksRun {
                form,
                ready: [
                    unique_recipient(&format!("pm-{form}-ready1")),
                    unique_recipient(&format!("pm-{form}-ready2")),
                ],
                composed: [
                    unique_recipient(&format!("pm-{form}-composed1")),
                    unique_recipient(&format!("pm-{form}-composed2")),
                ],
            };
            let run = run_program(
                &work,
                &program,
                &[
                    "marks",
                    form,
                    &server.host,
                    &server.port.to_string(),
                    SENDER,
                    &recipients.ready[0],
                    &recipients.ready[1],
                    &recipients.composed[0],
                    &recipients.composed[1],
                ],
            );
            run.expect_ok(&format!("marks {form}"));
            recipients
        })
        .collect();

    // The ready messages: the same bytes for every recipient of both forms.
    let expected_ready = ready_message(
        "undisclosed-recipients:;",
        "marks-ready@example.test",
        "Marks ready message",
    );
    for run in &forms {
        for recipient in &run.ready {
            assert_same_bytes(
                &delivered_message(recipient),
                &expected_ready,
                &format!(
                    "the ready message with {} marks, as delivered to {recipient}",
                    run.form
                ),
            );
        }
    }

    // The composed messages: one per form, the same bytes for both of its recipients.
    let mut composed = Vec::new();
    for run in &forms {
        let first = delivered_message(&run.composed[0]);
        let second = delivered_message(&run.composed[1]);
        assert_same_bytes(
            &second,
            &first,
            &format!(
                "the composed message with {} marks to {} compared with the one to {}",
                run.form, run.composed[1], run.composed[0]
            ),
        );
        let message = MimeEntity::parse(&first);
        check_composed_marks_message(&message, run);
        composed.push(message);
    }

    // Both forms must produce the same content.
    let (single_byte, utf8) = (&composed[0], &composed[1]);
    for name in ["From", "Subject", "MIME-Version"] {
        assert_eq!(
            single_byte.required_header(name),
            utf8.required_header(name),
            "the {name} header differs between the 8-bit and the UTF-8 marks"
        );
    }
    // The boundary in Content-Type differs on every message, so only the type is compared.
    assert_eq!(
        single_byte.media_type(),
        utf8.media_type(),
        "media types of both forms"
    );

    let single_byte_parts = single_byte.leaf_parts();
    let utf8_parts = utf8.leaf_parts();
    assert_eq!(
        single_byte_parts.len(),
        utf8_parts.len(),
        "number of parts: 8-bit marks {}, UTF-8 marks {}",
        describe_parts(&single_byte_parts),
        describe_parts(&utf8_parts)
    );
    for (index, (left, right)) in single_byte_parts.iter().zip(&utf8_parts).enumerate() {
        for name in [
            "Content-Type",
            "Content-Disposition",
            "Content-Transfer-Encoding",
        ] {
            assert_eq!(
                left.header(name),
                right.header(name),
                "the {name} header of part {} differs between the 8-bit and the UTF-8 marks",
                index + 1
            );
        }
        assert_same_bytes(
            &right.decoded_body(),
            &left.decoded_body(),
            &format!(
                "decoded part {} with UTF-8 marks compared with 8-bit marks",
                index + 1
            ),
        );
    }
}

#[test]
fn defce_int_and_string() {
    let server = require_test_server();
    let work = WorkDir::new("defce");
    let program = compile_program(&work);

    let recipient = unique_recipient("pm-defce");
    let run = run_program(
        &work,
        &program,
        &[
            "defce",
            &server.host,
            &server.port.to_string(),
            SENDER,
            &recipient,
        ],
    );
    run.expect_ok("defce");

    assert_same_bytes(
        &delivered_message(&recipient),
        &ready_message(&recipient, &recipient, "DEFCE ready message"),
        "the ready message sent through smtp_send",
    );
}

#[test]
fn mime_reader_sample_message() {
    // A hand-written message with a folded header, an encoded subject and the three
    // transfer encodings, which checks the MIME reader that the delivery tests rely on.
    let sample = b"Subject: =?utf-8?Q?caf=C3=A9?= =?utf-8?B?IGNyw6htZQ==?= ok\n\
Content-Type: multipart/mixed;\n boundary=\"b1\"\n\
\n\
preamble\n\
--b1\n\
Content-Type: text/plain; charset=\"UTF-8\"\n\
Content-Transfer-Encoding: quoted-printable\n\
\n\
soft =\nbreak caf=C3=A9\n\
--b1\n\
Content-Type: application/json\n\
Content-Disposition: attachment; filename=\"a.json\"\n\
Content-Transfer-Encoding: base64\n\
\n\
e30NCg==\n\
\n\
--b1\n\
Content-Disposition: attachment; filename=plain.txt\n\
\n\
7bit text\n\
--b1--\n\
epilogue\n";

    let message = MimeEntity::parse(sample);
    assert_eq!(
        decode_header_words(message.required_header("Subject")),
        "caf\u{e9} cr\u{e8}me ok"
    );
    assert_eq!(message.media_type(), "multipart/mixed");

    let parts = message.leaf_parts();
    assert_eq!(parts.len(), 3, "{}", describe_parts(&parts));
    assert_eq!(parts[0].charset().as_deref(), Some("utf-8"));
    assert_eq!(parts[0].attachment_name(), None);
    assert_same_bytes(
        &parts[0].decoded_body(),
        "soft break caf\u{e9}".as_bytes(),
        "quoted-printable part",
    );
    assert_eq!(parts[1].attachment_name().as_deref(), Some("a.json"));
    assert_same_bytes(&parts[1].decoded_body(), b"{}\r\n", "base64 part");
    assert_eq!(
        parts[2].media_type(),
        "text/plain",
        "default type of a part"
    );
    assert_eq!(parts[2].attachment_name().as_deref(), Some("plain.txt"));
    assert_same_bytes(&parts[2].decoded_body(), b"7bit text", "7bit part");
}

// ------------------------------------------------- expected messages

/// Recipients of one run of the `marks` subcommand.
struct MarksRun {
    form: &'static str,
    ready: [String; 2],
    composed: [String; 2],
}

/// Returns the ready message that `ready_message` in platform_marshal.c builds, as Postfix
/// stores it: LF line endings, dot-stuffing undone, and a final line ending added.
fn ready_message(to_header: &str, message_id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Platform test <{SENDER}>\n\
         To: {to_header}\n\
         Subject: {subject}\n\
         Date: Mon, 01 Jan 2024 00:00:00 +0000\n\
         Message-ID: <{message_id}>\n\
         \n\
         First line of the text.\n\
         .A line that starts with a dot.\n\
         Last line.\n"
    )
    .into_bytes()
}

fn check_sender_header(message: &MimeEntity) {
    let from = message.required_header("From");
    assert!(
        from.contains("Platform test") && from.contains(&format!("<{SENDER}>")),
        "the From header does not carry the display name and the sender: {from}"
    );
}

/// Checks the composed message of one `marks` run against what the C program passed.
fn check_composed_marks_message(message: &MimeEntity, run: &MarksRun) {
    let form = run.form;
    check_sender_header(message);

    let to = message.required_header("To");
    for recipient in &run.composed {
        assert!(
            to.contains(&format!("<{recipient}>")),
            "the To header with {form} marks does not name {recipient}: {to}"
        );
    }
    assert!(
        to.contains("Marks Reader"),
        "the To header with {form} marks lost the display name: {to}"
    );
    assert_eq!(
        decode_header_words(message.required_header("Subject")),
        "Marks composed message, caf\u{e9} cr\u{e8}me",
        "the decoded subject with {form} marks"
    );
    assert_eq!(
        message.media_type(),
        "multipart/mixed",
        "top-level type with {form} marks"
    );

    let parts = message.leaf_parts();
    assert_eq!(
        parts.len(),
        3,
        "expected a text part and two attachments with {form} marks, found {}",
        describe_parts(&parts)
    );

    let text = &parts[0];
    assert_eq!(
        text.media_type(),
        "text/plain",
        "first part with {form} marks"
    );
    assert_eq!(
        text.charset().as_deref(),
        Some("utf-8"),
        "text charset with {form} marks"
    );
    assert!(
        text.attachment_name().is_none(),
        "the text part is marked as an attachment"
    );
    assert_same_bytes(
        &lf_endings(&text.decoded_body()),
        "Dear reader,\n\nthe bill for caf\u{e9} cr\u{e8}me is 4.20 EUR.\n\nRegards,\nAccounts"
            .as_bytes(),
        &format!("the decoded text with {form} marks"),
    );

    // application/json is not text, so it travels in base64 and keeps its CRLF exactly.
    let json = &parts[1];
    assert_eq!(
        json.attachment_name().as_deref(),
        Some("totals.json"),
        "with {form} marks"
    );
    assert_eq!(json.media_type(), "application/json", "with {form} marks");
    assert_eq!(
        json.header("Content-Transfer-Encoding")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("base64"),
        "transfer encoding of totals.json with {form} marks"
    );
    assert_same_bytes(
        &json.decoded_body(),
        b"{\r\n  \"invoice\": 42,\r\n  \"amount\": \"4.20\"\r\n}",
        &format!("the decoded totals.json with {form} marks"),
    );

    // A text attachment may travel as 7bit, so its line endings are those of the maildir.
    let readme = &parts[2];
    assert_eq!(
        readme.attachment_name().as_deref(),
        Some("readme.txt"),
        "with {form} marks"
    );
    assert_eq!(readme.media_type(), "text/plain", "with {form} marks");
    assert_same_bytes(
        &lf_endings(&readme.decoded_body()),
        b"line 1\nline 2",
        &format!("the decoded readme.txt with {form} marks"),
    );
}

/// Fails with both texts shown when the bytes differ.
fn assert_same_bytes(actual: &[u8], expected: &[u8], description: &str) {
    assert!(
        actual == expected,
        "{description} differs from what was expected\n--- delivered ({} bytes) ---\n{}\n\
         --- expected ({} bytes) ---\n{}",
        actual.len(),
        String::from_utf8_lossy(actual).escape_debug(),
        expected.len(),
        String::from_utf8_lossy(expected).escape_debug()
    );
}

/// Replaces CRLF with LF, for text whose line endings depend on the transfer encoding.
fn lf_endings(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index..].starts_with(b"\r\n") {
            index += 1;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    out
}

// ------------------------------------------------------------- MIME reading

/// One MIME entity, a message or a body part: its header fields, unfolded, and its raw
/// body. It expects the LF line endings that Postfix stores.
struct MimeEntity {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl MimeEntity {
    fn parse(bytes: &[u8]) -> MimeEntity {
        let (head, body) = if bytes.starts_with(b"\n") {
            (&bytes[..0], &bytes[1..])
        } else {
            match find(bytes, b"\n\n") {
                Some(end) => (&bytes[..end], &bytes[end + 2..]),
                None => (bytes, &bytes[bytes.len()..]),
            }
        };

        let mut headers: Vec<(String, String)> = Vec::new();
        for line in String::from_utf8_lossy(head).split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.starts_with(' ') || line.starts_with('\t') {
                // A continuation line: unfolding removes only the line break.
                let (_, value) = headers.last_mut().unwrap_or_else(|| {
                    panic!("header section starts with a continuation line: {line:?}")
                });
                value.push_str(line);
                continue;
            }
            let (name, value) = line.split_once(':').unwrap_or_else(|| {
                panic!("header line without ':' in the delivered message: {line:?}")
            });
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }

        MimeEntity {
            headers,
            body: body.to_vec(),
        }
    }

    /// Returns the first field with this name, compared without regard to case.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    }

    fn required_header(&self, name: &str) -> &str {
        self.header(name).unwrap_or_else(|| {
            panic!(
                "the delivered entity has no {name} header; its headers: {:?}",
                self.headers
            )
        })
    }

    /// Returns the lowercase type/subtype of Content-Type, text/plain when it is missing
    /// (RFC 2045, section 5.2).
    fn media_type(&self) -> String {
        self.header("Content-Type")
            .map(|value| {
                value
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_else(|| "text/plain".to_string())
    }

    fn charset(&self) -> Option<String> {
        parameter(self.header("Content-Type")?, "charset").map(|value| value.to_ascii_lowercase())
    }

    /// Returns the file name of a part with `Content-Disposition: attachment`.
    fn attachment_name(&self) -> Option<String> {
        let disposition = self.header("Content-Disposition")?;
        let kind = disposition.split(';').next().unwrap_or("").trim();
        if !kind.eq_ignore_ascii_case("attachment") {
            return None;
        }
        Some(parameter(disposition, "filename").unwrap_or_else(|| {
            panic!("attachment without a plain filename parameter: {disposition}")
        }))
    }

    /// Returns the leaf parts in order, descending into every multipart entity.
    fn leaf_parts(&self) -> Vec<MimeEntity> {
        if !self.media_type().starts_with("multipart/") {
            return vec![MimeEntity {
                headers: self.headers.clone(),
                body: self.body.clone(),
            }];
        }
        let content_type = self.required_header("Content-Type");
        let boundary = parameter(content_type, "boundary")
            .unwrap_or_else(|| panic!("multipart entity without a boundary: {content_type}"));
        split_multipart(&self.body, &boundary)
            .iter()
            .flat_map(|part| MimeEntity::parse(part).leaf_parts())
            .collect()
    }

    /// Returns the body with its Content-Transfer-Encoding undone.
    fn decoded_body(&self) -> Vec<u8> {
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        match encoding.as_str() {
            "base64" => {
                let compact: Vec<u8> = self
                    .body
                    .iter()
                    .copied()
                    .filter(|byte| !byte.is_ascii_whitespace())
                    .collect();
                BASE64.decode(&compact).unwrap_or_else(|error| {
                    panic!(
                        "invalid base64 in a delivered part ({error}): {}",
                        String::from_utf8_lossy(&self.body)
                    )
                })
            }
            "quoted-printable" => decode_quoted_printable(&self.body),
            "7bit" | "8bit" | "binary" => self.body.clone(),
            other => panic!("unknown Content-Transfer-Encoding {other:?} in a delivered part"),
        }
    }
}

fn describe_parts(parts: &[MimeEntity]) -> String {
    let list: Vec<String> = parts
        .iter()
        .map(|part| format!("{} {:?}", part.media_type(), part.attachment_name()))
        .collect();
    format!("{} parts: [{}]", parts.len(), list.join(", "))
}

/// Returns a parameter of a structured header value such as `text/plain; charset="utf-8"`,
/// without quotes. Values that contain ';' inside quotes are not supported.
fn parameter(header_value: &str, name: &str) -> Option<String> {
    header_value.split(';').skip(1).find_map(|item| {
        let (key, value) = item.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let value = value.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or(value);
        Some(unquoted.to_string())
    })
}

/// Splits a multipart body into its parts (RFC 2046, section 5.1.1). The line break before
/// each delimiter belongs to the delimiter, and the part after the closing delimiter is the
/// epilogue, which is dropped.
fn split_multipart(body: &[u8], boundary: &str) -> Vec<Vec<u8>> {
    let delimiter = format!("\n--{boundary}").into_bytes();
    let mut text = Vec::with_capacity(body.len() + 1);
    text.push(b'\n');
    text.extend_from_slice(body);

    let mut starts = Vec::new();
    let mut search_from = 0;
    while let Some(offset) = find(&text[search_from..], &delimiter) {
        starts.push(search_from + offset);
        search_from += offset + delimiter.len();
    }

    let mut parts = Vec::new();
    for (index, &start) in starts.iter().enumerate() {
        let after = start + delimiter.len();
        if text[after..].starts_with(b"--") {
            return parts;
        }
        let Some(next) = starts.get(index + 1) else {
            break;
        };
        let line_end = find(&text[after..], b"\n")
            .map(|offset| after + offset + 1)
            .unwrap_or(text.len());
        parts.push(text[line_end.min(*next)..*next].to_vec());
    }
    panic!(
        "the multipart body has no closing delimiter --{boundary}--:\n{}",
        String::from_utf8_lossy(body)
    );
}

/// Undoes quoted-printable encoding (RFC 2045, section 6.7).
fn decode_quoted_printable(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len());
    let mut index = 0;
    while index < encoded.len() {
        if encoded[index] != b'=' {
            out.push(encoded[index]);
            index += 1;
            continue;
        }

        let rest = &encoded[index + 1..];
        if rest.starts_with(b"\r\n") {
            index += 3;
        } else if rest.starts_with(b"\n") {
            index += 2;
        } else {
            let byte = rest
                .get(..2)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .unwrap_or_else(|| {
                    panic!(
                        "invalid quoted-printable escape at byte {index}: {}",
                        String::from_utf8_lossy(encoded)
                    )
                });
            out.push(byte);
            index += 3;
        }
    }
    out
}

/// Decodes the UTF-8 encoded words of a header value (RFC 2047). Whitespace between two
/// encoded words is dropped, as the RFC requires.
fn decode_header_words(value: &str) -> String {
    let mut decoded = String::new();
    let mut previous_was_encoded = false;
    for (index, word) in value.split(' ').enumerate() {
        match decode_encoded_word(word) {
            Some(text) => {
                if index > 0 && !previous_was_encoded {
                    decoded.push(' ');
                }
                decoded.push_str(&text);
                previous_was_encoded = true;
            }
            None => {
                if index > 0 {
                    decoded.push(' ');
                }
                decoded.push_str(word);
                previous_was_encoded = false;
            }
        }
    }
    decoded
}

/// Decodes one `=?charset?Q|B?text?=` word, or returns None when the word is not encoded.
fn decode_encoded_word(word: &str) -> Option<String> {
    let inner = word.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut fields = inner.splitn(3, '?');
    let (charset, encoding, text) = (fields.next()?, fields.next()?, fields.next()?);
    assert!(
        charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii"),
        "encoded word in the character set {charset}, but the library sends UTF-8: {word}"
    );

    let bytes = if encoding.eq_ignore_ascii_case("B") {
        BASE64
            .decode(text)
            .unwrap_or_else(|error| panic!("invalid base64 in the encoded word {word}: {error}"))
    } else if encoding.eq_ignore_ascii_case("Q") {
        decode_quoted_printable(text.replace('_', " ").as_bytes())
    } else {
        panic!("unknown encoding {encoding} in the encoded word {word}");
    };
    Some(
        String::from_utf8(bytes)
            .unwrap_or_else(|error| panic!("the encoded word {word} is not UTF-8: {error}")),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

// ------------------------------------------------------- build and run

/// Returns the repository root, where Cargo.toml is.
fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Returns the directory of the libmvsmtp.so that this test run links against.
///
/// `cargo test` builds the cdylib into target/<profile>/deps/, next to this test
/// executable, but copies it up to target/<profile>/ only on `cargo build`, so the copy in
/// deps/ is preferred because it is never older than the sources under test.
fn library_dir() -> PathBuf {
    let executable = std::env::current_exe().expect("failed to find the test executable");
    let deps_dir = executable
        .parent()
        .unwrap_or_else(|| panic!("unexpected test executable path {}", executable.display()));
    let profile_dir = deps_dir
        .parent()
        .unwrap_or_else(|| panic!("unexpected test executable path {}", executable.display()));

    for candidate in [deps_dir, profile_dir] {
        if candidate.join("libmvsmtp.so").is_file() {
            return candidate.to_path_buf();
        }
    }
    panic!(
        "libmvsmtp.so not found in {} or {}; build the library with the same profile \
         (for example `cargo build --release`) and run the test again",
        deps_dir.display(),
        profile_dir.display()
    );
}

/// Temporary directory for one test's program and files, removed on drop.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn new(test_name: &str) -> WorkDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "mvsmtp-platform-marshal-{}-{}-{}-{test_name}",
            std::process::id(),
            unix_nanos(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("failed to create {}: {error}", path.display()));
        WorkDir { path }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn path_text(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("temporary path is not UTF-8: {}", path.display()))
}

/// Compiles tests/c/platform_marshal.c as strict C99 and links it against libmvsmtp.
fn compile_program(work: &WorkDir) -> PathBuf {
    let source = repo_dir().join("tests/c/platform_marshal.c");
    let output = work.path.join("platform_marshal");
    let library_dir = library_dir();

    let mut command = Command::new("cc");
    command
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(format!("-I{}", repo_dir().join("include").display()))
        .arg(&source)
        .arg(format!("-L{}", library_dir.display()))
        .arg("-lmvsmtp")
        .arg(format!("-Wl,-rpath,{}", library_dir.display()))
        .arg("-o")
        .arg(&output);

    let result = command
        .output()
        .unwrap_or_else(|error| panic!("failed to start the C compiler `cc`: {error}"));
    assert!(
        result.status.success(),
        "compiling {} failed ({}):\n{command:?}\n{}{}",
        source.display(),
        result.status,
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    output
}

/// Exit status and output of one run of the C program.
struct ProgramRun {
    args: Vec<String>,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl ProgramRun {
    /// Fails unless the run exited with 0 and printed "NAME: ok" for its subcommand.
    fn expect_ok(&self, label: &str) {
        let subcommand = self.args.first().map(String::as_str).unwrap_or("");
        assert!(
            self.status.code() == Some(0) && self.stdout.contains(&format!("{subcommand}: ok")),
            "platform_marshal {label} reported failures: {}",
            self.describe()
        );
    }

    fn describe(&self) -> String {
        let ending = match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "unknown exit status".to_string(),
        };
        format!(
            "{ending}, arguments {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args, self.stdout, self.stderr
        )
    }
}

/// Runs the program with its output going to files in the work directory, and kills it
/// if it runs longer than RUN_LIMIT.
fn run_program(work: &WorkDir, program: &Path, args: &[&str]) -> ProgramRun {
    static RUN_COUNTER: AtomicUsize = AtomicUsize::new(0);
    let run_number = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
    let stdout_path = work.path.join(format!("stdout-{run_number}.txt"));
    let stderr_path = work.path.join(format!("stderr-{run_number}.txt"));
    let create = |path: &Path| {
        fs::File::create(path)
            .unwrap_or_else(|error| panic!("failed to create {}: {error}", path.display()))
    };

    let mut child = Command::new(program)
        .args(args)
        .current_dir(&work.path)
        .stdin(std::process::Stdio::null())
        .stdout(create(&stdout_path))
        .stderr(create(&stderr_path))
        .spawn()
        .unwrap_or_else(|error| panic!("failed to start {}: {error}", program.display()));

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("failed to wait for the C program") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} did not finish within {} s and was killed; stdout so far:\n{}",
                program.display(),
                RUN_LIMIT.as_secs(),
                fs::read_to_string(&stdout_path).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };

    ProgramRun {
        args: args.iter().map(|arg| arg.to_string()).collect(),
        status,
        stdout: String::from_utf8_lossy(&fs::read(&stdout_path).unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&stderr_path).unwrap_or_default()).into_owned(),
    }
}

// ------------------------------------------- test server and maildir

/// Address of the Postfix test server.
struct TestServer {
    host: String,
    port: u16,
}

/// Returns the test server address, or fails the test if nothing listens there.
fn require_test_server() -> TestServer {
    let host = std::env::var("MVSMTP_TEST_HOST").unwrap_or_else(|_| "127.0.0.1".to_string());
    let port_text = std::env::var("MVSMTP_TEST_PORT").unwrap_or_else(|_| "2525".to_string());
    let port: u16 = port_text
        .parse()
        .unwrap_or_else(|_| panic!("MVSMTP_TEST_PORT is not a valid port: {port_text:?}"));

    let address = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .unwrap_or_else(|| panic!("failed to resolve MVSMTP_TEST_HOST {host:?}"));
    if let Err(error) = TcpStream::connect_timeout(&address, Duration::from_secs(3)) {
        panic!(
            "the Postfix test server is not reachable at {host}:{port} ({error}); \
             start it with `tests/postfix/test-server.sh up`"
        );
    }
    TestServer { host, port }
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("system clock is before 1970")
        .as_nanos()
}

/// Returns a recipient address that no other test run uses. The local part stays under
/// the 64-octet limit of RFC 5321.
fn unique_recipient(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}-{}@example.test",
        std::process::id(),
        unix_nanos() % 1_000_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn maildir_root() -> PathBuf {
    std::env::var_os("MVSMTP_TEST_MAILDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/mvsmtp-postfix/maildir"))
}

/// Waits for the message whose X-Original-To header is `recipient` and returns its bytes
/// without the header lines that Postfix added above the client's bytes.
fn delivered_message(recipient: &str) -> Vec<u8> {
    strip_postfix_headers(&wait_for_delivery(recipient))
}

/// Polls new/ and cur/ of the maildir for up to DELIVERY_WAIT for the message addressed to
/// `recipient`, and returns the whole file.
fn wait_for_delivery(recipient: &str) -> Vec<u8> {
    let root = maildir_root();
    let deadline = Instant::now() + DELIVERY_WAIT;
    let mut read_errors = Vec::new();

    loop {
        for subdir in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(root.join(subdir)) else {
                continue;
            };
            for entry in entries.flatten() {
                match fs::read(entry.path()) {
                    Ok(bytes) if is_addressed_to(&bytes, recipient) => return bytes,
                    Ok(_) => {}
                    Err(error) => read_errors.push(format!("{}: {error}", entry.path().display())),
                }
            }
        }

        if Instant::now() > deadline {
            read_errors.dedup();
            panic!(
                "no message for {recipient} arrived in {} (new/ or cur/) within {} s \
                 (files that could not be read: {read_errors:?})",
                root.display(),
                DELIVERY_WAIT.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Reports whether the header section has the line `X-Original-To: recipient`.
fn is_addressed_to(message: &[u8], recipient: &str) -> bool {
    message
        .split(|&byte| byte == b'\n')
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.strip_prefix(b"X-Original-To:"))
        .any(|value| value.trim_ascii() == recipient.as_bytes())
}

/// Removes the header lines that Postfix puts above the client's bytes (Return-Path,
/// X-Original-To, Delivered-To, Received) together with their continuation lines.
fn strip_postfix_headers(message: &[u8]) -> Vec<u8> {
    const ADDED_BY_POSTFIX: [&[u8]; 4] = [
        b"return-path:",
        b"x-original-to:",
        b"delivered-to:",
        b"received:",
    ];

    let mut rest = message;
    let mut in_added_header = false;
    while let Some(line_end) = rest.iter().position(|&byte| byte == b'\n') {
        let line = &rest[..line_end];
        let is_continuation = line.starts_with(b" ") || line.starts_with(b"\t");
        let is_added = ADDED_BY_POSTFIX
            .iter()
            .any(|name| line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name));

        if is_added {
            in_added_header = true;
        } else if !(in_added_header && is_continuation) {
            break;
        }
        rest = &rest[line_end + 1..];
    }
    rest.to_vec()
}
