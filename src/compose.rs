//! Composed messages: a subject, a text or HTML body (or both) and attachments become one
//! MIME message (RFC 5322 and RFC 2045 to 2049), written by the mail-builder crate.
//!
//! mail-builder encodes non-ASCII header text as RFC 2047 encoded words and non-ASCII file
//! names with RFC 2231, and picks quoted-printable or base64 for bodies, so no line of the
//! result exceeds 998 octets. This module turns MultiValue input into what it needs: text
//! in the caller's character set is decoded to Unicode first, attribute marks become line
//! breaks, and attachments are described one per attribute of a dynamic array.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mail_builder::headers::address::Address as HeaderAddress;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use mail_builder::MessageBuilder;

use crate::address::{escape_for_message, parse_mailbox, parse_mailboxes, Address, Mailbox};
use crate::data::{ATTRIBUTE_MARK, ATTRIBUTE_MARK_UTF8};
use crate::error::Error;
use crate::ffi::calls::MessageArguments;
use crate::options::{BodyType, Options};

/// A value mark in an 8-bit MultiValue string, separating the fields of an attachment.
const VALUE_MARK: u8 = 0xFD;
const VALUE_MARK_UTF8: [u8; 3] = [0xEF, 0xA3, 0xBD];

/// A subvalue mark, a line break inside in-memory attachment content.
const SUBVALUE_MARK: u8 = 0xFC;
const SUBVALUE_MARK_UTF8: [u8; 3] = [0xEF, 0xA3, 0xBC];

/// Header names that come from an argument or option of `smtp_send_message`, with it.
const ARGUMENT_HEADERS: &[(&str, &str)] = &[
    ("from", "the from argument"),
    ("to", "the to argument"),
    ("cc", "the cc option"),
    ("bcc", "the bcc option"),
    ("reply-to", "the reply_to option"),
    ("subject", "the subject argument"),
];

/// Header names that the composer or the servers on the way write, and that an extra
/// header must not repeat.
const GENERATED_HEADERS: &[&str] = &[
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "received",
    "return-path",
];

/// The character set of caller text: UTF-8, or an 8-bit code page of a system without NLS.
#[derive(Debug, Clone, Copy)]
pub struct Charset(&'static encoding_rs::Encoding);

impl Charset {
    /// Looks a character set up by one of its usual labels, such as `ISO-8859-1`,
    /// `windows-1252` or `UTF-8`.
    pub fn from_label(label: &str) -> Option<Charset> {
        encoding_rs::Encoding::for_label(label.trim().as_bytes()).map(Charset)
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// Decodes caller text. UTF-8 input must be valid, because a wrong guess would turn the
    /// text into mojibake; 8-bit code pages decode every byte.
    pub fn decode<'a>(self, bytes: &'a [u8], what: &str) -> Result<Cow<'a, str>, Error> {
        if self.0 == encoding_rs::UTF_8 {
            return std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|error| {
                Error::InvalidArgument(format!(
                    "Invalid {what}: it is not valid UTF-8 (byte {} of it). On a system without NLS, set the charset option to the code page in use, such as charset=ISO-8859-1 (--charset on the command line).",
                    error.valid_up_to() + 1
                ))
            });
        }
        let (text, _) = self.0.decode_without_bom_handling(bytes);
        Ok(text)
    }
}

impl Default for Charset {
    fn default() -> Self {
        Charset(encoding_rs::UTF_8)
    }
}

impl PartialEq for Charset {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Charset {}

/// One attachment, read and ready to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Everything that goes into a composed message, already validated and decoded.
#[derive(Debug, Clone, Default)]
pub struct Composition {
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    /// Extra headers as (name, value), in the caller's order.
    pub headers: Vec<(String, String)>,
}

/// Decodes an address list in the caller's character set. Byte 0xFD is a value mark on
/// systems without NLS but a letter in ISO-8859-1, so the list is split on it first and
/// joined again with U+F8FD, which the address parser also takes as a value mark.
pub fn decode_address_list(bytes: &[u8], charset: Charset, what: &str) -> Result<String, Error> {
    let mut text = String::new();
    for (index, segment) in bytes.split(|&b| b == VALUE_MARK).enumerate() {
        if index > 0 {
            text.push('\u{F8FD}');
        }
        text.push_str(&charset.decode(segment, what)?);
    }
    Ok(text)
}

/// Decodes a one-line header text, such as the subject. Attribute marks become spaces, and
/// other control characters are refused, because they would break the header.
pub fn decode_header_text(bytes: &[u8], charset: Charset, what: &str) -> Result<String, Error> {
    let joined = replace_marks(bytes, ATTRIBUTE_MARK, &ATTRIBUTE_MARK_UTF8, b" ");
    let text = charset.decode(&joined, what)?;
    if text.chars().any(|ch| ch.is_control() && ch != '\t') {
        return Err(Error::InvalidArgument(format!("Invalid {what}: it contains a line break or another control character. Keep it on one line.")));
    }
    Ok(text.into_owned())
}

/// Decodes body text: attribute marks become line breaks first, then the bytes are decoded.
pub fn decode_body_text(bytes: &[u8], charset: Charset, what: &str) -> Result<String, Error> {
    let lines = marks_to_line_breaks(bytes);
    Ok(charset.decode(&lines, what)?.into_owned())
}

/// Replaces attribute marks (byte 0xFE and U+F8FE) with LF, so a dynamic array of lines
/// becomes text. It runs before character set decoding, because 0xFE is a letter in
/// ISO-8859-1.
pub fn marks_to_line_breaks(bytes: &[u8]) -> Cow<'_, [u8]> {
    replace_marks(bytes, ATTRIBUTE_MARK, &ATTRIBUTE_MARK_UTF8, b"\n")
}

fn replace_marks<'a>(bytes: &'a [u8], mark: u8, mark_utf8: &[u8; 3], replacement: &[u8]) -> Cow<'a, [u8]> {
    if !bytes.contains(&mark) && !bytes.windows(3).any(|window| window == mark_utf8) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == mark {
            out.extend_from_slice(replacement);
            index += 1;
        } else if bytes[index..].starts_with(mark_utf8) {
            out.extend_from_slice(replacement);
            index += mark_utf8.len();
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    Cow::Owned(out)
}

/// Splits a dynamic array on attribute marks (and LF, for C callers), then each attribute
/// on value marks.
fn split_dynamic_array(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let lines = replace_marks(bytes, ATTRIBUTE_MARK, &ATTRIBUTE_MARK_UTF8, b"\n");
    lines
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.iter().all(|&b| b == b' '))
        .map(|line| {
            let values = replace_marks(line, VALUE_MARK, &VALUE_MARK_UTF8, b"\n");
            values.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
        })
        .collect()
}

/// Reads the attachments argument: one attachment per attribute, with the values
/// path, file name, content type and content. Content is used when the path is empty, and
/// its subvalue marks become line breaks.
pub fn read_attachments(list: &[u8], charset: Charset) -> Result<Vec<Attachment>, Error> {
    let mut attachments = Vec::new();
    for (index, fields) in split_dynamic_array(list).into_iter().enumerate() {
        let number = index + 1;
        let field = |position: usize| fields.get(position).map(Vec::as_slice).unwrap_or(b"");
        let path = charset.decode(field(0), &format!("path of attachment {number}"))?.trim().to_owned();
        let name = charset.decode(field(1), &format!("file name of attachment {number}"))?.trim().to_owned();
        let content_type = charset.decode(field(2), &format!("content type of attachment {number}"))?.trim().to_owned();

        let (data, default_name) = if path.is_empty() {
            if fields.len() < 4 {
                return Err(Error::InvalidArgument(format!(
                    "Invalid attachment {number}: it has neither a path nor content. Give a file path as its first value, or content as its fourth."
                )));
            }
            let content = replace_marks(field(3), SUBVALUE_MARK, &SUBVALUE_MARK_UTF8, b"\r\n").into_owned();
            (content, format!("attachment-{number}.txt"))
        } else {
            let data = std::fs::read(&path).map_err(|error| {
                Error::InvalidArgument(format!(
                    "Reading attachment {number} from {path} failed: {error}. Check the path and that this process's user may read the file."
                ))
            })?;
            let file_name = Path::new(&path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.clone());
            (data, file_name)
        };

        let name = if name.is_empty() { default_name } else { name };
        if name.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(format!("Invalid file name of attachment {number}: it contains a control character.")));
        }
        let mut content_type = if content_type.is_empty() {
            mime_guess::from_path(&name).first_raw().unwrap_or("application/octet-stream").to_owned()
        } else {
            validate_content_type(&content_type, number)?
        };
        // In-memory text is in the caller's character set, so label it unless the caller did.
        let needs_label = path.is_empty() && content_type.starts_with("text/") && !content_type.to_ascii_lowercase().contains("charset") && !data.is_ascii();
        if needs_label {
            content_type = format!("{content_type}; charset={}", charset.name().to_ascii_lowercase());
        }
        attachments.push(Attachment { name, content_type, data });
    }
    Ok(attachments)
}

fn validate_content_type(value: &str, number: usize) -> Result<String, Error> {
    let essence = value.split(';').next().unwrap_or("").trim();
    let valid = essence.split_once('/').is_some_and(|(kind, subtype)| {
        let token = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
        token(kind) && token(subtype)
    });
    if !valid || value.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(format!(
            "Invalid content type \"{}\" of attachment {number}: write it as type/subtype, such as application/pdf, or leave it empty to guess it from the file name.",
            escape_for_message(value.as_bytes())
        )));
    }
    Ok(value.to_owned())
}

/// Checks an extra header line `Name: value` and splits it.
pub fn parse_extra_header(line: &str) -> Result<(String, String), Error> {
    let invalid = |problem: &str| {
        Error::InvalidArgument(format!("Invalid header \"{}\": {problem}.", escape_for_message(line.as_bytes())))
    };
    let (name, value) = line.split_once(':').ok_or_else(|| invalid("write it as Name: value"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(invalid("the name must be printable ASCII without spaces or ':'"));
    }
    let lower = name.to_ascii_lowercase();
    if let Some((_, source)) = ARGUMENT_HEADERS.iter().find(|(header, _)| *header == lower) {
        return Err(invalid(&format!("set it with {source} instead")));
    }
    if GENERATED_HEADERS.contains(&lower.as_str()) {
        return Err(invalid("the library or the mail servers write this header, so it cannot be set"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("the value contains a control character"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// Makes a Message-ID that is unique for this process and time, on the sender's domain.
pub fn new_message_id(domain: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    // The thread's stack address differs between threads that draw the same counter value
    // from different copies of the library in one process.
    let marker = &count as *const u64 as usize;
    format!("{nanos:x}.{:x}.{count:x}.{marker:x}@{domain}", std::process::id())
}

/// Builds a composed message from the arguments of `smtp_send_message` and the options,
/// and returns the envelope sender, the envelope recipients (To, Cc and Bcc, without
/// repeats) and the message bytes. Bcc addresses go into the envelope only.
pub fn compose_message(options: &Options, arguments: MessageArguments<'_>) -> Result<(Address, Vec<Address>, Vec<u8>), Error> {
    let charset = options.charset;

    let from_text = decode_address_list(required(arguments.from, "from")?, charset, "sender")?;
    let from = parse_mailbox(from_text.as_bytes())
        .map_err(|error| Error::InvalidArgument(format!("Invalid sender {error}.")))?
        .ok_or_else(|| Error::InvalidArgument("Missing sender: a composed message needs a from address for its From header.".into()))?;

    let list = |value: Option<&[u8]>, what: &str| -> Result<Vec<Mailbox>, Error> {
        let Some(value) = value else { return Ok(Vec::new()) };
        let text = decode_address_list(value, charset, what)?;
        if text.chars().all(|ch| ch == ' ' || ch == ',' || ch == ';' || ch == '\u{F8FD}') {
            return Ok(Vec::new());
        }
        parse_mailboxes(text.as_bytes()).map_err(|error| Error::InvalidArgument(format!("Invalid {what} list: {error}.")))
    };
    let to = list(Some(required(arguments.to, "to")?), "recipient")?;
    let cc = list(options.cc.as_deref(), "cc")?;
    let bcc = list(options.bcc.as_deref(), "bcc")?;
    let reply_to = list(options.reply_to.as_deref(), "reply_to")?;

    // Domains are case-insensitive (RFC 5321, 2.4), local parts are not.
    let same = |a: &Address, b: &Address| a.local_part() == b.local_part() && a.domain().eq_ignore_ascii_case(b.domain());
    let mut recipients: Vec<Address> = Vec::new();
    for mailbox in to.iter().chain(&cc).chain(&bcc) {
        if !recipients.iter().any(|known| same(known, &mailbox.address)) {
            recipients.push(mailbox.address.clone());
        }
    }
    if recipients.is_empty() {
        return Err(Error::InvalidArgument("No recipient: pass at least one address in to, or set cc or bcc.".into()));
    }

    let subject = decode_header_text(required(arguments.subject, "subject")?, charset, "subject")?;
    let body = decode_body_text(required(arguments.body, "body")?, charset, "body")?;
    let html_from_file = options.html_file.as_ref().map(|path| read_html_file(path, charset)).transpose()?;
    let (text, html) = match (options.body_type, html_from_file) {
        (BodyType::Html, Some(_)) => {
            return Err(Error::InvalidArgument("Both body_type=html and html_file are set: give the HTML one way only.".into()));
        }
        (BodyType::Html, None) => (None, Some(body)),
        (BodyType::Text, html) if body.is_empty() && html.is_some() => (None, html),
        (BodyType::Text, html) => (Some(body), html),
    };

    let attachments = read_attachments(arguments.attachments.unwrap_or(b""), charset)?;
    let headers = options
        .headers
        .iter()
        .map(|line| parse_extra_header(&decode_header_text(line, charset, "header")?))
        .collect::<Result<Vec<_>, _>>()?;

    let sender = from.address.clone();
    let composition = Composition { from: Some(from), to, cc, reply_to, subject, text, html, attachments, headers };
    Ok((sender, recipients, build(&composition)?))
}

fn required<'a>(value: Option<&'a [u8]>, name: &str) -> Result<&'a [u8], Error> {
    value.ok_or_else(|| Error::InvalidArgument(format!("Missing argument: {name} is NULL. Pass a string (\"\" where the field is empty).")))
}

/// Writes the composed message, headers and body, with CRLF line endings.
pub fn build(composition: &Composition) -> Result<Vec<u8>, Error> {
    let Some(from) = &composition.from else {
        return Err(Error::InvalidArgument(
            "Missing sender: a composed message needs a from address for its From header.".into(),
        ));
    };
    let domain = header_address(&from.address).rsplit_once('@').map(|(_, domain)| domain.to_owned()).unwrap_or_default();

    let mut builder = MessageBuilder::new().from(to_header(from)).message_id(new_message_id(&domain));
    builder = if looks_encoded(&composition.subject) {
        builder.header("Subject", Raw::new(encoded_words(&composition.subject)))
    } else {
        builder.subject(Text::new(composition.subject.as_str()))
    };
    if !composition.to.is_empty() {
        builder = builder.to(to_header_list(&composition.to));
    }
    if !composition.cc.is_empty() {
        builder = builder.cc(to_header_list(&composition.cc));
    }
    if !composition.reply_to.is_empty() {
        builder = builder.reply_to(to_header_list(&composition.reply_to));
    }
    for (name, value) in &composition.headers {
        builder = if looks_encoded(value) {
            builder.header(name.clone(), Raw::new(encoded_words(value)))
        } else {
            builder.header(name.clone(), Text::new(value.clone()))
        };
    }

    // Text in MIME has CRLF line breaks (RFC 2046, 4.1.1), also inside base64.
    if let Some(text) = &composition.text {
        builder = builder.text_body(crlf_lines(text));
    }
    if let Some(html) = &composition.html {
        builder = builder.html_body(crlf_lines(html));
    }
    if composition.text.is_none() && composition.html.is_none() {
        builder = builder.text_body("");
    }
    for attachment in &composition.attachments {
        builder = builder.attachment(attachment.content_type.clone(), attachment.name.clone(), attachment.data.as_slice());
    }

    builder.write_to_vec().map_err(|error| Error::Internal(format!("writing the MIME message failed: {error}")))
}

/// Reports whether plain text contains what a mail reader would decode as an RFC 2047
/// encoded word, so that it must be encoded to arrive unchanged.
fn looks_encoded(text: &str) -> bool {
    text.contains("=?") && text.contains("?=")
}

/// Encodes header text as base64 encoded words (RFC 2047) of at most 45 input bytes each,
/// split at character boundaries and folded onto continuation lines.
fn encoded_words(text: &str) -> String {
    use base64::Engine;
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + 45).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(&text.as_bytes()[start..end]);
        words.push(format!("=?utf-8?B?{encoded}?="));
        start = end;
    }
    words.join("\r\n ")
}

/// Converts every line break (LF, CR or CRLF) to CRLF.
fn crlf_lines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n").replace('\n', "\r\n")
}

/// Returns the address as it appears in a header: with an ASCII domain, since servers and mail
/// readers that do not understand UTF-8 headers still handle punycode.
fn header_address(address: &Address) -> String {
    address.to_ascii().map(|ascii| ascii.to_string()).unwrap_or_else(|_| address.to_string())
}

fn to_header(mailbox: &Mailbox) -> HeaderAddress<'static> {
    HeaderAddress::new_address(mailbox.name.clone(), header_address(&mailbox.address))
}

fn to_header_list(mailboxes: &[Mailbox]) -> HeaderAddress<'static> {
    HeaderAddress::new_list(mailboxes.iter().map(to_header).collect())
}

/// Reads an HTML body from a file, decoded in the caller's character set.
pub fn read_html_file(path: &PathBuf, charset: Charset) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|error| {
        Error::InvalidArgument(format!(
            "Reading the HTML body from {} failed: {error}. Check html_file and that this process's user may read the file.",
            path.display()
        ))
    })?;
    Ok(charset.decode(&bytes, "HTML body")?.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_labels() {
        assert_eq!(Charset::from_label("ISO-8859-1").unwrap().name(), "windows-1252");
        assert_eq!(Charset::from_label("utf8").unwrap().name(), "UTF-8");
        assert!(Charset::from_label("klingon").is_none());
    }

    #[test]
    fn latin1_decoded() {
        let charset = Charset::from_label("ISO-8859-1").unwrap();
        assert_eq!(charset.decode(b"caf\xe9", "subject").unwrap(), "caf\u{e9}");
    }

    #[test]
    fn invalid_utf8_rejected() {
        let error = Charset::default().decode(b"caf\xe9", "subject").unwrap_err();
        assert!(error.to_string().contains("charset=ISO-8859-1"), "{error}");
    }

    #[test]
    fn marks_become_line_breaks() {
        assert_eq!(&*marks_to_line_breaks(b"a\xfeb"), b"a\nb");
        assert_eq!(&*marks_to_line_breaks("a\u{f8fe}b".as_bytes()), b"a\nb");
        assert!(matches!(marks_to_line_breaks(b"plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn in_memory_attachment() {
        let list = b"\xfdreport.csv\xfd\xfda,b\xfc1,2";
        let attachments = read_attachments(list, Charset::default()).unwrap();
        assert_eq!(attachments.len(), 1);
        assert_eq!(attachments[0].name, "report.csv");
        assert_eq!(attachments[0].content_type, "text/csv");
        assert_eq!(attachments[0].data, b"a,b\r\n1,2");
    }

    #[test]
    fn file_attachment_guesses_type() {
        let path = std::env::temp_dir().join(format!("mvsmtp-compose-{}.pdf", std::process::id()));
        std::fs::write(&path, b"%PDF-1.4").unwrap();
        let list = format!("{}\n", path.display());
        let attachments = read_attachments(list.as_bytes(), Charset::default()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(attachments[0].content_type, "application/pdf");
        assert_eq!(attachments[0].data, b"%PDF-1.4");
        assert!(attachments[0].name.ends_with(".pdf"));
    }

    #[test]
    fn missing_file_named() {
        let error = read_attachments(b"/nonexistent/invoice.pdf", Charset::default()).unwrap_err();
        assert!(error.to_string().contains("attachment 1 from /nonexistent/invoice.pdf"), "{error}");
    }

    #[test]
    fn bad_content_type_rejected() {
        assert!(read_attachments(b"\xfdx.txt\xfdnot a type\xfddata", Charset::default()).is_err());
    }

    #[test]
    fn extra_headers_checked() {
        assert_eq!(parse_extra_header("X-Invoice: 42").unwrap(), ("X-Invoice".into(), "42".into()));
        assert!(parse_extra_header("Subject: sneaky").is_err());
        assert!(parse_extra_header("Bcc: a@example.test").is_err());
        assert!(parse_extra_header("No colon").is_err());
        assert!(parse_extra_header("Bad Name: x").is_err());
    }

    #[test]
    fn encoded_word_lookalike_encoded() {
        assert!(looks_encoded("=?utf-8?q?x?= plain"));
        let words = encoded_words("=?utf-8?q?x?= is plain text, not an encoded word, and it is long");
        assert!(words.starts_with("=?utf-8?B?"), "{words}");
        assert!(words.contains("\r\n "), "{words}");
    }

    #[test]
    fn line_breaks_become_crlf() {
        assert_eq!(crlf_lines("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
    }

    #[test]
    fn in_memory_text_labelled() {
        let attachments = read_attachments("\u{f8fd}st\u{e4}dte.csv\u{f8fd}\u{f8fd}Z\u{fc}rich".as_bytes(), Charset::default()).unwrap();
        assert_eq!(attachments[0].content_type, "text/csv; charset=utf-8");
    }

    #[test]
    fn message_ids_unique() {
        let first = new_message_id("example.test");
        let second = new_message_id("example.test");
        assert_ne!(first, second);
        assert!(first.ends_with("@example.test"));
    }
}
