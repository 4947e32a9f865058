//! Envelope addresses: the sender of MAIL FROM and the recipients of RCPT TO.
//!
//! Callers pass bytes, because MultiValue strings are not always UTF-8: a value mark is the
//! single byte 0xFD on systems without NLS, or U+F8FD in UTF-8 on NLS systems. A recipient
//! list is split on `,`, `;` and value marks outside quotes and angle brackets, and each
//! entry may be written `Name <addr>`, of which only `addr` goes into the envelope.
//!
//! Addresses may contain UTF-8 (RFC 6532) in the local part and in the domain. Sending such
//! an address as it is needs a server that offers SMTPUTF8 (RFC 6531). For other servers,
//! [`Address::to_ascii`] converts a non-ASCII domain to its A-label (punycode) form, but a
//! non-ASCII local part has no ASCII form.
//!
//! Validation is strict about what could change the meaning of an SMTP command: no control
//! characters anywhere, and no spaces or angle brackets outside a quoted local part. An
//! address that passes can be placed in a command line without any further escaping.

use std::borrow::Cow;
use std::fmt;

/// A value mark in an 8-bit MultiValue string.
pub const VALUE_MARK: u8 = 0xFD;

/// A value mark on NLS systems: U+F8FD encoded in UTF-8.
pub const VALUE_MARK_UTF8: [u8; 3] = [0xEF, 0xA3, 0xBD];

/// Private-use characters at the top of U+F8xx, where NLS systems put the MultiValue marks,
/// such as U+F8FE (attribute mark), U+F8FD (value mark) and U+F8FC (subvalue mark). They
/// are rejected in addresses.
const MARK_CHARACTERS: std::ops::RangeInclusive<char> = '\u{F8F8}'..='\u{F8FF}';

/// A mailbox address such as `user@example.com` or `josé@bücher.example`, validated for
/// use in the envelope.
///
/// A non-ASCII domain is stored in the normalized form that IDNA processing (UTS #46) gives
/// it: lower case, NFC, and ASCII dots between labels. `Jose@Bücher.Example` is stored as
/// `Jose@bücher.example`, because the domain syntax of RFC 6531 allows U-labels, which are
/// in that form, and not upper-case letters or other dots such as U+3002. ASCII domains and
/// all local parts stay as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(String);

impl Address {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reports whether the whole address is ASCII, so that it can be sent without SMTPUTF8.
    pub fn is_ascii(&self) -> bool {
        self.0.is_ascii()
    }

    /// Returns the part before the last '@', a dot-atom or a quoted string such as `"john smith"`.
    pub fn local_part(&self) -> &str {
        self.split_at_last_at().0
    }

    /// Returns the part after the last '@', a domain name or an address literal such as `[192.0.2.1]`.
    pub fn domain(&self) -> &str {
        self.split_at_last_at().1
    }

    /// Reports whether the local part is ASCII, which a server without SMTPUTF8 requires.
    pub fn has_ascii_local_part(&self) -> bool {
        self.local_part().is_ascii()
    }

    /// Converts the address to the form for a server that does not offer SMTPUTF8: a
    /// non-ASCII domain becomes its A-label form, so `user@bücher.example` becomes
    /// `user@xn--bcher-kva.example`. An ASCII address is returned unchanged.
    ///
    /// Fails when the local part is not ASCII. A local part has no ASCII form, because only
    /// the receiving server decides which mailbox it names.
    pub fn to_ascii(&self) -> Result<Address, AddressError> {
        if self.is_ascii() {
            return Ok(self.clone());
        }
        if !self.has_ascii_local_part() {
            return Err(AddressError {
                value: escape_text_for_message(self.0.as_bytes()),
                problem: "has a part before the '@' that is not ASCII, but this server does not support SMTPUTF8 (RFC 6531), which such an address needs. \
                          Only the domain of an address can be converted to ASCII, so use an ASCII address for this recipient or sender, or a server that offers SMTPUTF8"
                    .into(),
            });
        }

        // The domain passed the same conversion when the address was validated.
        let domain = idna::domain_to_ascii(self.domain()).map_err(|_| AddressError {
            value: escape_text_for_message(self.0.as_bytes()),
            problem: "has a domain that cannot be converted to its ASCII (xn--) form".into(),
        })?;
        Ok(Address(format!("{}@{domain}", self.local_part())))
    }

    fn split_at_last_at(&self) -> (&str, &str) {
        // Every Address is built by validate_address, which requires an '@'.
        self.0.rsplit_once('@').unwrap_or((&self.0, ""))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address with the display name that came with it, for the From, To and Cc headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name of a `Name <addr>` entry, without its double quotes and backslash
    /// escapes. `None` for a bare address and for an empty name.
    pub name: Option<String>,
    pub address: Address,
}

/// An invalid address or address list, with the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressError {
    pub value: String,
    pub problem: String,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" {}", self.value, self.problem)
    }
}

fn invalid(entry: &[u8], problem: impl Into<String>) -> AddressError {
    AddressError { value: escape_text_for_message(entry), problem: problem.into() }
}

/// Parses the envelope sender. An empty value, or `<>`, is the null sender used for
/// bounces and auto-replies, returned as `None`.
pub fn parse_sender(value: &[u8]) -> Result<Option<Address>, AddressError> {
    Ok(parse_mailbox(value)?.map(|mailbox| mailbox.address))
}

/// Parses a recipient list. Empty entries, such as the one after a trailing comma or mark,
/// are skipped, but at least one recipient must remain.
pub fn parse_recipients(value: &[u8]) -> Result<Vec<Address>, AddressError> {
    Ok(parse_mailboxes(value)?.into_iter().map(|mailbox| mailbox.address).collect())
}

/// Parses one mailbox with its display name, such as the From of a message. An empty value,
/// or `<>`, returns `None`, as for [`parse_sender`].
pub fn parse_mailbox(value: &[u8]) -> Result<Option<Mailbox>, AddressError> {
    let trimmed = trim_spaces(value);
    if trimmed.is_empty() || trimmed == b"<>" {
        return Ok(None);
    }
    // Empty entries, such as the one after a trailing value mark, do not count.
    let entries: Vec<&[u8]> = split_list(value)?.into_iter().filter(|entry| !trim_spaces(entry).is_empty()).collect();
    match entries.as_slice() {
        [] => Ok(None),
        [only] => parse_entry(only).map(Some),
        _ => Err(invalid(value, "holds more than one address, but a message has exactly one sender")),
    }
}

/// Parses a list of mailboxes with their display names, such as the To of a message. Empty
/// entries are skipped, but at least one mailbox must remain, as for [`parse_recipients`].
pub fn parse_mailboxes(value: &[u8]) -> Result<Vec<Mailbox>, AddressError> {
    let mailboxes = split_list(value)?
        .into_iter()
        .filter(|entry| !trim_spaces(entry).is_empty())
        .map(parse_entry)
        .collect::<Result<Vec<_>, _>>()?;
    if mailboxes.is_empty() {
        return Err(invalid(value, "contains no address; pass at least one, such as user@example.com"));
    }
    Ok(mailboxes)
}

/// Splits a list on `,`, `;` and value marks that stand outside double quotes and angle
/// brackets, so that `"Smith, John" <js@example.com>` stays one entry.
fn split_list(value: &[u8]) -> Result<Vec<&[u8]>, AddressError> {
    let mut entries = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut index = 0;

    while index < value.len() {
        let byte = value[index];
        let separator_len = if in_quotes || in_angle {
            0
        } else if byte == b',' || byte == b';' || byte == VALUE_MARK {
            1
        } else if value[index..].starts_with(&VALUE_MARK_UTF8) {
            VALUE_MARK_UTF8.len()
        } else {
            0
        };

        if separator_len > 0 {
            entries.push(&value[start..index]);
            index += separator_len;
            start = index;
            continue;
        }

        match byte {
            b'\\' if in_quotes => index += 1,
            b'"' => in_quotes = !in_quotes,
            b'<' if !in_quotes => in_angle = true,
            b'>' if !in_quotes => in_angle = false,
            _ => {}
        }
        index += 1;
    }
    entries.push(&value[start..]);

    if in_quotes {
        return Err(invalid(value, "has a double quote that is never closed"));
    }
    Ok(entries)
}

/// Parses one entry: a bare address or `Display Name <address>`.
fn parse_entry(entry: &[u8]) -> Result<Mailbox, AddressError> {
    if let Some(position) = entry.iter().position(|&b| is_control(b)) {
        let problem = format!("contains the control character {}; remove line breaks and other control characters", describe_byte(entry[position]));
        return Err(invalid(trim_spaces(entry), problem));
    }
    let entry = trim_spaces(entry);

    // split_list leaves a value mark in the entry only where quotes or angle brackets
    // enclose it.
    if entry.contains(&VALUE_MARK) || entry.windows(VALUE_MARK_UTF8.len()).any(|window| window == VALUE_MARK_UTF8) {
        return Err(invalid(
            entry,
            "contains a value mark inside double quotes or angle brackets. A value mark separates addresses only outside them, so close the quote or bracket before the mark",
        ));
    }

    let Some(open) = find_unquoted(entry, b'<') else {
        let address = validate_address(entry, entry)?;
        return Ok(Mailbox { name: None, address });
    };
    if !entry[open..].contains(&b'>') {
        return Err(invalid(entry, "has a '<' without a closing '>'; write it as Name <user@example.com>"));
    }
    if entry.last() != Some(&b'>') {
        return Err(invalid(entry, "has text after the closing '>'; write it as Name <user@example.com>"));
    }

    let name = decode_display_name(&entry[..open]).map_err(|problem| invalid(entry, problem))?;
    let inner = &entry[open + 1..entry.len() - 1];
    let address = validate_address(trim_spaces(inner), entry)?;
    Ok(Mailbox { name, address })
}

/// Decodes the display name before the '<'. Double quotes are removed, and inside them a
/// backslash escapes the next character (RFC 5322 quoted-string). Text outside quotes stays
/// as written. Bytes that are not UTF-8 become U+FFFD, because callers decode other
/// character sets before they pass a name.
fn decode_display_name(raw: &[u8]) -> Result<Option<String>, String> {
    let mut decoded = Vec::with_capacity(raw.len());
    let mut in_quotes = false;
    let mut index = 0;
    while index < raw.len() {
        match raw[index] {
            b'"' => in_quotes = !in_quotes,
            b'\\' if in_quotes && index + 1 < raw.len() => {
                index += 1;
                decoded.push(raw[index]);
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }

    let name = String::from_utf8_lossy(&decoded);
    let name = name.trim();
    if let Some(control) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains the control character {} in the name; remove line breaks and other control characters",
            describe_char(control)
        ));
    }
    Ok(if name.is_empty() { None } else { Some(name.to_owned()) })
}

/// Validates `local@domain`. `entry` is the whole entry, named in the error.
fn validate_address(address: &[u8], entry: &[u8]) -> Result<Address, AddressError> {
    if address.is_empty() {
        return Err(invalid(entry, "has an empty address"));
    }
    let address = std::str::from_utf8(address).map_err(|error| {
        let byte = address[error.valid_up_to()];
        invalid(
            entry,
            format!("is not valid UTF-8 at the byte 0x{byte:02X}. Addresses must be UTF-8, so on a system without NLS only ASCII addresses work"),
        )
    })?;
    if let Some(bad) = address.chars().find(|c| c.is_control() || MARK_CHARACTERS.contains(c)) {
        let problem = if bad.is_control() {
            format!("contains the control character {}; remove line breaks and other control characters", describe_char(bad))
        } else {
            format!("contains {}, a MultiValue mark on NLS systems, which is never part of an address", describe_char(bad))
        };
        return Err(invalid(entry, problem));
    }

    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(invalid(entry, "has no '@'; write the address as user@example.com, and put a name that contains a comma in double quotes"));
    };
    validate_local_part(local).map_err(|problem| invalid(entry, problem))?;
    let domain = validate_domain(domain).map_err(|problem| invalid(entry, problem))?;

    Ok(Address(format!("{local}@{domain}")))
}

/// Checks a dot-atom such as `john.smith` or `josé`, or a quoted local part. Non-ASCII
/// characters count as atom characters (RFC 6532).
fn validate_local_part(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("has nothing before the '@'".into());
    }
    if local.starts_with('"') {
        return validate_quoted_local_part(local.as_bytes());
    }
    if let Some(&bad) = local.as_bytes().iter().find(|&&b| b.is_ascii() && !is_atom_byte(b) && b != b'.') {
        return Err(format!("contains {} outside a quoted local part", describe_byte(bad)));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("has a misplaced '.' in the part before the '@'".into());
    }
    Ok(())
}

/// Checks a quoted local part such as `"john smith"`: any printable character, with `\`
/// escaping the next one.
fn validate_quoted_local_part(local: &[u8]) -> Result<(), String> {
    if local.len() < 2 || local.last() != Some(&b'"') {
        return Err("has a quoted part before the '@' that is not closed".into());
    }
    let inner = &local[1..local.len() - 1];
    let mut index = 0;
    while index < inner.len() {
        match inner[index] {
            b'\\' if index + 1 < inner.len() => index += 2,
            b'\\' | b'"' => return Err("has an unescaped '\\' or '\"' inside its quoted part".into()),
            _ => index += 1,
        }
    }
    Ok(())
}

/// Checks a domain name, or an address literal such as `[192.0.2.1]` or `[IPv6:2001:db8::1]`,
/// and returns the domain in the form that the address stores.
fn validate_domain(domain: &str) -> Result<Cow<'_, str>, String> {
    if domain.is_empty() {
        return Err("has nothing after the '@'".into());
    }

    if let Some(inner) = domain.strip_prefix('[') {
        let valid_literal = inner
            .strip_suffix(']')
            .is_some_and(|literal| !literal.is_empty() && literal.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b':'));
        return if valid_literal {
            Ok(Cow::Borrowed(domain))
        } else {
            Err("has an invalid address literal after the '@'; write an IP address in brackets, such as [192.0.2.1] or [IPv6:2001:db8::1]".into())
        };
    }

    if domain.is_ascii() {
        if !is_domain_name(domain.as_bytes()) {
            return Err("has an invalid domain after the '@'; use letters, digits, '-' and '.'".into());
        }
        if has_a_label(domain) && idna::domain_to_ascii(domain).is_err() {
            return Err("has an invalid domain after the '@', because a label that starts with \"xn--\" is not the valid punycode of an internationalized domain name".into());
        }
        return Ok(Cow::Borrowed(domain));
    }

    // UTS #46 maps the name (lower case, NFC, other dots to '.') and rejects characters
    // that IDNA disallows. domain_to_ascii applies no ASCII deny list, so the ASCII form is
    // then checked by the rules for ASCII domains, which allow '_' and reject spaces.
    let Ok(ascii) = idna::domain_to_ascii(domain) else {
        return Err("has a domain after the '@' that is not a valid internationalized domain name (IDNA); check it for characters that domain names do not allow".into());
    };
    if !is_domain_name(ascii.as_bytes()) {
        return Err("has an invalid domain after the '@'; use letters, digits, '-' and single dots between labels of at most 63 characters in their ASCII (xn--) form".into());
    }
    let (unicode, result) = idna::domain_to_unicode(&ascii);
    if result.is_err() {
        return Err("has a domain after the '@' that is not a valid internationalized domain name (IDNA)".into());
    }
    Ok(Cow::Owned(unicode))
}

/// Reports whether a domain has a label with the ACE prefix `xn--`, which must decode as
/// punycode.
fn has_a_label(domain: &str) -> bool {
    domain.split('.').any(|label| label.as_bytes().get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"xn--")))
}

/// Reports whether the bytes form a host name: labels of letters, digits, '-' and '_'
/// separated by single dots. Underscores are not valid in host names, but occur in real
/// internal names, so servers decide about them.
pub fn is_domain_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split(|&b| b == b'.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Reports whether a byte belongs to an RFC 5322 dot-atom, apart from the dot itself.
fn is_atom_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&byte)
}

/// Trims spaces only: tabs and line breaks are control characters, which are rejected.
pub fn trim_spaces(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value.iter().rposition(|&b| b != b' ').map_or(start, |last| last + 1);
    &value[start..end]
}

fn is_control(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7F
}

/// Returns the position of the first `target` byte outside double quotes, where `\`
/// escapes the next byte.
pub fn find_unquoted(entry: &[u8], target: u8) -> Option<usize> {
    let mut in_quotes = false;
    let mut index = 0;
    while index < entry.len() {
        match entry[index] {
            b'\\' if in_quotes => index += 1,
            b'"' => in_quotes = !in_quotes,
            byte if byte == target && !in_quotes => return Some(index),
            _ => {}
        }
        index += 1;
    }
    None
}

/// Names a byte for an error message: `CR`, `LF`, `NUL`, `a space`, or the character itself.
pub fn describe_byte(byte: u8) -> String {
    match byte {
        b'\r' => "CR".into(),
        b'\n' => "LF".into(),
        0 => "NUL".into(),
        b' ' => "a space".into(),
        b if is_control(b) => format!("0x{b:02X}"),
        b if b.is_ascii() => format!("'{}'", b as char),
        b => format!("the byte 0x{b:02X}"),
    }
}

/// Names a character for an error message: `U+0085` for an invisible one, or the character
/// itself in quotes.
fn describe_char(c: char) -> String {
    if c.is_ascii() {
        return describe_byte(c as u8);
    }
    if is_invisible(c) {
        format!("U+{:04X}", c as u32)
    } else {
        format!("'{c}'")
    }
}

/// Renders caller bytes for an error message: control characters become `\r`, `\n` or
/// `\xNN`, value marks stay visible as `\xFD`, and the text is cut at 200 bytes. Every
/// non-ASCII byte is escaped, so the message is ASCII whatever the caller's character set.
pub fn escape_for_message(value: &[u8]) -> String {
    escape(value, false)
}

/// Renders caller text for an error message like [`escape_for_message`], but keeps valid
/// UTF-8 characters as they are, such as the `用户` of `用户@例子.广告`. Invalid bytes stay
/// `\xNN`, and invisible characters such as U+0085 or the mark U+F8FD become `\u{85}` or `\u{F8FD}`.
pub fn escape_text_for_message(value: &[u8]) -> String {
    escape(value, true)
}

fn escape(value: &[u8], keep_utf8: bool) -> String {
    const LIMIT: usize = 200;
    let mut out = String::new();
    let mut length = 0;

    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            length += c.len_utf8();
            if length > LIMIT {
                out.push_str("...");
                return out;
            }
            match c {
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                ' '..='~' => out.push(c),
                _ if keep_utf8 && !c.is_ascii() && is_invisible(c) => out.push_str(&format!("\\u{{{:X}}}", c as u32)),
                _ if keep_utf8 && !c.is_ascii() => out.push(c),
                _ => {
                    let mut buffer = [0; 4];
                    for byte in c.encode_utf8(&mut buffer).bytes() {
                        out.push_str(&format!("\\x{byte:02X}"));
                    }
                }
            }
        }
        for &byte in chunk.invalid() {
            length += 1;
            if length > LIMIT {
                out.push_str("...");
                return out;
            }
            out.push_str(&format!("\\x{byte:02X}"));
        }
    }
    out
}

/// Reports whether a character would not show, or would disturb the text around it, in an
/// error message: control characters, the MultiValue marks, zero-width characters and the
/// bidirectional formatting characters.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || MARK_CHARACTERS.contains(&c)
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipients(value: &[u8]) -> Vec<String> {
        parse_recipients(value).unwrap().into_iter().map(|a| a.0).collect()
    }

    #[test]
    fn separators_split_list() {
        assert_eq!(recipients(b"a@x.test,b@x.test;c@x.test\xfdd@x.test"), vec!["a@x.test", "b@x.test", "c@x.test", "d@x.test"]);
        assert_eq!(recipients("a@x.test\u{f8fd}b@x.test".as_bytes()), vec!["a@x.test", "b@x.test"]);
    }

    #[test]
    fn empty_entries_skipped() {
        assert_eq!(recipients(b" a@x.test , ,\xfd"), vec!["a@x.test"]);
    }

    #[test]
    fn display_name_form() {
        assert_eq!(recipients(b"Jane Doe <jane@x.test>"), vec!["jane@x.test"]);
        assert_eq!(recipients(b"\"Smith, John\" <js@x.test>, b@x.test"), vec!["js@x.test", "b@x.test"]);
        assert_eq!(recipients(b"<bare@x.test>"), vec!["bare@x.test"]);
    }

    #[test]
    fn quoted_local_part() {
        assert_eq!(recipients(b"\"john smith\"@x.test"), vec!["\"john smith\"@x.test"]);
        assert_eq!(recipients(b"\"a,b\"@x.test"), vec!["\"a,b\"@x.test"]);
    }

    #[test]
    fn address_literals() {
        assert_eq!(recipients(b"postmaster@[192.0.2.1]"), vec!["postmaster@[192.0.2.1]"]);
        assert_eq!(recipients(b"a@[IPv6:2001:db8::1]"), vec!["a@[IPv6:2001:db8::1]"]);
    }

    #[test]
    fn invalid_recipients_rejected() {
        let cases: &[&[u8]] = &[
            b"",
            b" , ; ",
            b"no-at-sign",
            b"a b@x.test",
            b"a@b.example>\r\nRCPT TO:<x@y.example>",
            b"a@x.test\r\n",
            b"a@x.test\x00",
            b"a<b@x.test",
            b"Name <a@x.test> trailing",
            b"@x.test",
            b"a@",
            b"a@x..test",
            b"a@-x test",
            b".a@x.test",
            b"\"unclosed@x.test",
            b"j\xe9@x.test",
            b"a@[bad literal]",
            b"a@x.test\x7f",
        ];
        for value in cases {
            assert!(parse_recipients(value).is_err(), "accepted {:?}", String::from_utf8_lossy(value));
        }
    }

    #[test]
    fn error_names_value() {
        let error = parse_recipients(b"ok@x.test,no-at-sign").unwrap_err();
        assert_eq!(error.value, "no-at-sign");
        assert!(error.to_string().contains("'@'"));
    }

    #[test]
    fn control_character_named() {
        let error = parse_recipients(b"a@x.test\r\nRCPT TO:<b@x.test>").unwrap_err();
        assert!(error.problem.contains("CR"), "{}", error.problem);
        assert_eq!(error.value, "a@x.test\\r\\nRCPT TO:<b@x.test>");
    }

    #[test]
    fn unclosed_angle_bracket_named() {
        let error = parse_recipients(b"Name <you@example.test").unwrap_err();
        assert!(error.problem.contains("without a closing '>'"), "{}", error.problem);
    }

    #[test]
    fn null_sender() {
        assert_eq!(parse_sender(b""), Ok(None));
        assert_eq!(parse_sender(b"<>"), Ok(None));
        assert_eq!(parse_sender(b"  "), Ok(None));
    }

    #[test]
    fn sender_forms() {
        assert_eq!(parse_sender(b"Billing <billing@x.test>").unwrap().unwrap().as_str(), "billing@x.test");
        assert!(parse_sender(b"a@x.test,b@x.test").is_err());
        assert!(parse_sender(b"a@x.test\nX").is_err());
    }

    #[test]
    fn domain_names() {
        assert!(is_domain_name(b"mail.example.com"));
        assert!(is_domain_name(b"host_1"));
        assert!(!is_domain_name(b""));
        assert!(!is_domain_name(b"a..b"));
        assert!(!is_domain_name(b"a b"));
    }

    fn address(value: &str) -> Address {
        parse_sender(value.as_bytes()).unwrap().unwrap()
    }

    fn mailbox(value: &[u8]) -> Mailbox {
        parse_mailbox(value).unwrap().unwrap()
    }

    fn problem(value: &[u8]) -> String {
        parse_recipients(value).unwrap_err().problem
    }

    #[test]
    fn utf8_addresses_accepted() {
        assert_eq!(recipients("用户@例子.广告".as_bytes()), vec!["用户@例子.广告"]);
        assert_eq!(recipients("josé@bücher.example".as_bytes()), vec!["josé@bücher.example"]);
        assert_eq!(recipients("\"quoted ü\"@x.test".as_bytes()), vec!["\"quoted ü\"@x.test"]);
        assert_eq!(recipients("Jürgen <jürgen.groß@x.test>".as_bytes()), vec!["jürgen.groß@x.test"]);
    }

    #[test]
    fn utf8_value_mark_separates() {
        assert_eq!(recipients("josé@x.test\u{f8fd}用户@例子.广告".as_bytes()), vec!["josé@x.test", "用户@例子.广告"]);
    }

    #[test]
    fn parts_split_at_last_at() {
        let quoted = address("\"a@b\"@x.test");
        assert_eq!(quoted.local_part(), "\"a@b\"");
        assert_eq!(quoted.domain(), "x.test");

        let international = address("用户@例子.广告");
        assert_eq!(international.local_part(), "用户");
        assert_eq!(international.domain(), "例子.广告");
    }

    #[test]
    fn ascii_checks() {
        assert!(address("a@x.test").is_ascii());
        assert!(address("a@x.test").has_ascii_local_part());
        assert!(!address("a@bücher.example").is_ascii());
        assert!(address("a@bücher.example").has_ascii_local_part());
        assert!(!address("josé@x.test").has_ascii_local_part());
        assert!(!address("\"quoted ü\"@x.test").has_ascii_local_part());
    }

    #[test]
    fn to_ascii_converts_domain() {
        assert_eq!(address("user@bücher.example").to_ascii().unwrap().as_str(), "user@xn--bcher-kva.example");
        assert_eq!(address("info@例子.广告").to_ascii().unwrap().as_str(), "info@xn--fsqu00a.xn--4rr70v");
        assert_eq!(address("\"a b\"@bücher.example").to_ascii().unwrap().as_str(), "\"a b\"@xn--bcher-kva.example");
    }

    #[test]
    fn to_ascii_keeps_ascii_address() {
        for value in ["a@x.test", "A.B@Mail.X.Test", "a@xn--bcher-kva.example", "postmaster@[192.0.2.1]"] {
            assert_eq!(address(value).to_ascii().unwrap(), address(value));
        }
    }

    #[test]
    fn to_ascii_rejects_utf8_local_part() {
        for value in ["josé@bücher.example", "用户@例子.广告", "\"quoted ü\"@x.test"] {
            let error = address(value).to_ascii().unwrap_err();
            assert_eq!(error.value, escape_text_for_message(value.as_bytes()));
            assert!(error.problem.contains("before the '@' that is not ASCII"), "{error}");
            assert!(error.problem.contains("SMTPUTF8 (RFC 6531)"), "{error}");
            assert!(error.problem.contains("use an ASCII address"), "{error}");
        }
    }

    #[test]
    fn idn_domain_normalized() {
        assert_eq!(address("Jose@Bücher.Example").as_str(), "Jose@bücher.example");
        assert_eq!(address("a@bu\u{308}cher.example").as_str(), "a@bücher.example");
        assert_eq!(address("a@例子\u{3002}广告").as_str(), "a@例子.广告");
        assert_eq!(address("a@xn--bcher-kva.例子").as_str(), "a@bücher.例子");
    }

    #[test]
    fn invalid_idn_rejected() {
        // idna rejects these: bad punycode, an empty A-label, a zero-width joiner that does
        // not follow a virama, and a private-use character.
        for value in ["a@xn--zz.example", "a@xn--.de", "a@xn--zz.bücher.example", "a@a\u{200d}b.de", "a@b\u{e000}.de"] {
            assert!(parse_recipients(value.as_bytes()).is_err(), "accepted {value}");
        }
        assert!(problem(b"a@xn--zz.example").contains("xn--"));
        assert!(problem("a@a\u{200d}bü.de".as_bytes()).contains("not a valid internationalized domain name"));
    }

    #[test]
    fn idn_domain_ascii_rules() {
        // idna accepts spaces (also a no-break space, which it maps to a space), empty labels
        // and long labels, so the ASCII form is checked by the rules for ASCII domains.
        let cases = ["a@ex ample.de", "a@bü cher.de", "a@bü\u{a0}cher.de", "a@bü..de", "a@bücher.de."];
        for value in cases {
            assert!(parse_recipients(value.as_bytes()).is_err(), "accepted {value}");
        }
        let long_label = format!("a@{}.de", "ü".repeat(70));
        assert!(problem(long_label.as_bytes()).contains("63 characters"));
    }

    #[test]
    fn non_utf8_rejected() {
        for value in [&b"j\xe9@x.test"[..], b"a@b\xfcr.de", b"\"caf\xe9\"@x.test", b"Name <a\xff@x.test>"] {
            let error = parse_recipients(value).unwrap_err();
            assert!(error.problem.contains("not valid UTF-8"), "{error}");
            assert!(error.problem.contains("without NLS"), "{error}");
        }
        assert!(problem(b"j\xe9@x.test").contains("0xE9"));
        assert_eq!(parse_recipients(b"j\xe9@x.test").unwrap_err().value, "j\\xE9@x.test");
    }

    #[test]
    fn c1_controls_rejected() {
        for value in ["a\u{85}b@x.test", "\"a\u{85}b\"@x.test", "a@x\u{9f}.test", "Na\u{85}me <a@x.test>"] {
            let error = parse_recipients(value.as_bytes()).unwrap_err();
            assert!(error.problem.contains("control character"), "{error}");
        }
        assert!(problem("a\u{85}b@x.test".as_bytes()).contains("U+0085"));
    }

    #[test]
    fn marks_inside_entry_rejected() {
        let cases: &[&[u8]] = &[
            "\"a\u{f8fd}b\"@x.test".as_bytes(),
            b"<a@x.test\xfdb@x.test>",
            "\"Smith\u{f8fd} John\" <a@x.test>".as_bytes(),
        ];
        for value in cases {
            let error = parse_recipients(value).unwrap_err();
            assert!(error.problem.contains("value mark"), "{error}");
        }
        let error = parse_recipients("a\u{f8fe}b@x.test".as_bytes()).unwrap_err();
        assert!(error.problem.contains("U+F8FE"), "{error}");
        assert_eq!(error.value, "a\\u{F8FE}b@x.test");
    }

    #[test]
    fn literal_must_be_ascii() {
        assert!(problem("a@[192.0.2.ü]".as_bytes()).contains("address literal"));
        assert!(problem("a@[例子]".as_bytes()).contains("address literal"));
    }

    #[test]
    fn error_value_keeps_utf8() {
        let error = parse_recipients("用户@xn--zz.广告".as_bytes()).unwrap_err();
        assert_eq!(error.value, "用户@xn--zz.广告");
        assert_eq!(escape_for_message("é\r".as_bytes()), "\\xC3\\xA9\\r");
        assert_eq!(escape_text_for_message("é\r\u{202e}".as_bytes()), "é\\r\\u{202E}");
        assert_eq!(escape_text_for_message(b"a\xfd"), "a\\xFD");
    }

    #[test]
    fn escape_cut_at_limit() {
        let long = "é".repeat(150);
        let escaped = escape_text_for_message(long.as_bytes());
        assert_eq!(escaped, format!("{}...", "é".repeat(100)));
        assert_eq!(escape_for_message(&[b'a'; 201]), format!("{}...", "a".repeat(200)));
        assert_eq!(escape_for_message(&[b'a'; 200]), "a".repeat(200));
    }

    #[test]
    fn mailbox_names() {
        let cases: &[(&[u8], Option<&str>, &str)] = &[
            (b"Jane Doe <jane@x.test>", Some("Jane Doe"), "jane@x.test"),
            (b"\"Smith, John\" <js@x.test>", Some("Smith, John"), "js@x.test"),
            (b"\"Say \\\"hi\\\" \\\\ there\" <a@x.test>", Some("Say \"hi\" \\ there"), "a@x.test"),
            (b"  \"  Padded \"   <a@x.test>", Some("Padded"), "a@x.test"),
            (b"\"Smith, John\" Jr <a@x.test>", Some("Smith, John Jr"), "a@x.test"),
            (b"<bare@x.test>", None, "bare@x.test"),
            (b"\"\" <a@x.test>", None, "a@x.test"),
            (b"bare@x.test", None, "bare@x.test"),
            (b"\"john smith\"@x.test", None, "\"john smith\"@x.test"),
            ("Jürgen Groß <jg@bücher.example>".as_bytes(), Some("Jürgen Groß"), "jg@bücher.example"),
            ("\"用户\" <用户@例子.广告>".as_bytes(), Some("用户"), "用户@例子.广告"),
        ];
        for &(value, name, address) in cases {
            let parsed = mailbox(value);
            assert_eq!(parsed.name.as_deref(), name, "{}", String::from_utf8_lossy(value));
            assert_eq!(parsed.address.as_str(), address);
        }
    }

    #[test]
    fn mailbox_name_not_utf8() {
        assert_eq!(mailbox(b"J\xfcrgen <j@x.test>").name.as_deref(), Some("J\u{fffd}rgen"));
    }

    #[test]
    fn mailbox_name_control_rejected() {
        assert!(parse_mailbox(b"Jane\r\nBcc: x@y.test <jane@x.test>").is_err());
        assert!(parse_mailbox(b"\"Jane\tDoe\" <jane@x.test>").is_err());
        assert!(parse_mailbox("\"Jane\u{9b}Doe\" <jane@x.test>".as_bytes()).is_err());
    }

    #[test]
    fn mailbox_null_sender() {
        assert_eq!(parse_mailbox(b""), Ok(None));
        assert_eq!(parse_mailbox(b" <> "), Ok(None));
        assert!(parse_mailbox(b"a@x.test, b@x.test").is_err());
    }

    #[test]
    fn mailbox_list() {
        let mailboxes = parse_mailboxes("\"Doe, Jane\" <jane@x.test>; josé@bücher.example\u{f8fd}Bob <bob@x.test>".as_bytes()).unwrap();
        let names: Vec<_> = mailboxes.iter().map(|m| m.name.as_deref()).collect();
        let addresses: Vec<_> = mailboxes.iter().map(|m| m.address.as_str()).collect();
        assert_eq!(names, vec![Some("Doe, Jane"), None, Some("Bob")]);
        assert_eq!(addresses, vec!["jane@x.test", "josé@bücher.example", "bob@x.test"]);
        assert!(parse_mailboxes(b" , ").is_err());
    }
}
