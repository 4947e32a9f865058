//! Envelope addresses: the sender of MAIL FROM and the recipients of RCPT TO.
//!
//! Callers pass bytes, because MultiValue strings are not always UTF-8: a value mark is the
//! single byte 0xFD on systems without NLS, or U+F8FD in UTF-8 on NLS systems. A recipient
//! list is split on `,`, `;` and value marks outside quotes and angle brackets, and each
//! entry may be written `Name <addr>`, of which only `addr` goes into the envelope.
//!
//! Validation is strict about what could change the meaning of an SMTP command: no control
//! characters anywhere, and no spaces or angle brackets outside a quoted local part. An
//! address that passes can be placed in a command line without any further escaping.

use std::fmt;

/// A value mark in an 8-bit MultiValue string.
pub const VALUE_MARK: u8 = 0xFD;

/// A value mark on NLS systems: U+F8FD encoded in UTF-8.
pub const VALUE_MARK_UTF8: [u8; 3] = [0xEF, 0xA3, 0xBD];

/// A mailbox address such as `user@example.com`, validated for use in the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(String);

impl Address {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
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
    AddressError { value: escape_for_message(entry), problem: problem.into() }
}

/// Parses the envelope sender. An empty value, or `<>`, is the null sender used for
/// bounces and auto-replies, returned as `None`.
pub fn parse_sender(value: &[u8]) -> Result<Option<Address>, AddressError> {
    let trimmed = trim_spaces(value);
    if trimmed.is_empty() || trimmed == b"<>" {
        return Ok(None);
    }
    let entries = split_list(value)?;
    if entries.len() > 1 {
        return Err(invalid(value, "holds more than one address, but a message has exactly one sender"));
    }
    parse_entry(entries[0]).map(Some)
}

/// Parses a recipient list. Empty entries, such as the one after a trailing comma or mark,
/// are skipped, but at least one recipient must remain.
pub fn parse_recipients(value: &[u8]) -> Result<Vec<Address>, AddressError> {
    let recipients = split_list(value)?
        .into_iter()
        .filter(|entry| !trim_spaces(entry).is_empty())
        .map(parse_entry)
        .collect::<Result<Vec<_>, _>>()?;
    if recipients.is_empty() {
        return Err(invalid(value, "contains no address; pass at least one, such as user@example.com"));
    }
    Ok(recipients)
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
fn parse_entry(entry: &[u8]) -> Result<Address, AddressError> {
    if let Some(position) = entry.iter().position(|&b| is_control(b)) {
        let problem = format!("contains the control character {}; remove line breaks and other control characters", describe_byte(entry[position]));
        return Err(invalid(trim_spaces(entry), problem));
    }
    let entry = trim_spaces(entry);

    let Some(open) = find_unquoted(entry, b'<') else {
        return validate_address(entry, entry);
    };
    if !entry[open..].contains(&b'>') {
        return Err(invalid(entry, "has a '<' without a closing '>'; write it as Name <user@example.com>"));
    }
    if entry.last() != Some(&b'>') {
        return Err(invalid(entry, "has text after the closing '>'; write it as Name <user@example.com>"));
    }
    let inner = &entry[open + 1..entry.len() - 1];
    validate_address(trim_spaces(inner), entry)
}

/// Validates `local@domain`. `entry` is the whole entry, named in the error.
fn validate_address(address: &[u8], entry: &[u8]) -> Result<Address, AddressError> {
    if address.is_empty() {
        return Err(invalid(entry, "has an empty address"));
    }
    if !address.is_ascii() {
        // NOTE: international addresses (SMTPUTF8, IDN domains) are not supported yet.
        return Err(invalid(entry, "contains non-ASCII characters; only ASCII e-mail addresses are supported"));
    }
    let Some(at) = address.iter().rposition(|&b| b == b'@') else {
        return Err(invalid(entry, "has no '@'; write the address as user@example.com, and put a name that contains a comma in double quotes"));
    };
    let (local, domain) = (&address[..at], &address[at + 1..]);

    validate_local_part(local).map_err(|problem| invalid(entry, problem))?;
    validate_domain(domain).map_err(|problem| invalid(entry, problem))?;

    // Plain ASCII was checked above, so this conversion cannot fail.
    Ok(Address(String::from_utf8_lossy(address).into_owned()))
}

fn validate_local_part(local: &[u8]) -> Result<(), String> {
    if local.is_empty() {
        return Err("has nothing before the '@'".into());
    }
    if local.first() == Some(&b'"') {
        return validate_quoted_local_part(local);
    }
    if let Some(&bad) = local.iter().find(|&&b| !is_atom_byte(b) && b != b'.') {
        return Err(format!("contains {} outside a quoted local part", describe_byte(bad)));
    }
    if local.starts_with(b".") || local.ends_with(b".") || local.windows(2).any(|pair| pair == b"..") {
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

/// Checks a domain name, or an address literal such as `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
fn validate_domain(domain: &[u8]) -> Result<(), String> {
    if domain.is_empty() {
        return Err("has nothing after the '@'".into());
    }
    if domain.first() == Some(&b'[') {
        let valid_literal = domain.len() > 2
            && domain.last() == Some(&b']')
            && domain[1..domain.len() - 1].iter().all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b':');
        return if valid_literal { Ok(()) } else { Err("has an invalid address literal after the '@'".into()) };
    }
    if !is_domain_name(domain) {
        return Err("has an invalid domain after the '@'; use letters, digits, '-' and '.'".into());
    }
    Ok(())
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

fn find_unquoted(entry: &[u8], target: u8) -> Option<usize> {
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

/// Renders caller bytes for an error message: control characters become `\r`, `\n` or
/// `\xNN`, value marks stay visible as `\xFD`, and the text is cut at 200 bytes.
pub fn escape_for_message(value: &[u8]) -> String {
    const LIMIT: usize = 200;
    let mut out = String::new();
    for &byte in value.iter().take(LIMIT) {
        match byte {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7E => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02X}")),
        }
    }
    if value.len() > LIMIT {
        out.push_str("...");
    }
    out
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
            "j\u{e9}@x.test".as_bytes(),
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
}
