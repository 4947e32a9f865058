//! The header section of a ready-made message, for the `sendmail` and `outbox` modes: its
//! fields with their values unfolded, the addresses in an address-list field such as To,
//! and the message without the Bcc fields.
//!
//! Lines may end in CRLF, LF, CR or an attribute mark (byte 0xFE, or U+F8FE in UTF-8),
//! because the library sends each of them as a line break.

use std::ops::Range;

use mvsmtp::address::find_unquoted;

/// An attribute mark on NLS systems: U+F8FE in UTF-8.
const ATTRIBUTE_MARK_UTF8: [u8; 3] = [0xEF, 0xA3, 0xBE];

/// One header field.
#[derive(Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name as written, such as `Cc`.
    pub name: &'a [u8],
    /// The text after the colon with the line breaks of continuation lines removed
    /// (unfolded, RFC 5322 section 2.2.3), leading spaces included.
    pub value: Vec<u8>,
    /// The bytes of the field in the message: its first line, its continuation lines and
    /// the line break after the last one.
    pub span: Range<usize>,
}

impl Field<'_> {
    pub fn is_named(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// Returns the fields of the message's header section, in order.
///
/// The section ends at the first empty line, or at the first line that is neither a field
/// nor a continuation line: that line already belongs to the body.
pub fn fields(message: &[u8]) -> Vec<Field<'_>> {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut start = 0;
    while start < message.len() {
        let (end, next) = line_at(message, start);
        let line = &message[start..end];
        if line.is_empty() {
            break;
        }

        if line[0] == b' ' || line[0] == b'\t' {
            let Some(field) = fields.last_mut() else { break };
            field.value.extend_from_slice(line);
            field.span.end = next;
        } else {
            let Some((name, value_start)) = split_field_name(line) else { break };
            fields.push(Field { name, value: line[value_start..].to_vec(), span: start..next });
        }
        start = next;
    }
    fields
}

/// Returns the end of the line that starts at `start` and the start of the next line.
fn line_at(message: &[u8], start: usize) -> (usize, usize) {
    let mut index = start;
    while index < message.len() {
        match message[index] {
            b'\n' | 0xFE => return (index, index + 1),
            b'\r' if message.get(index + 1) == Some(&b'\n') => return (index, index + 2),
            b'\r' => return (index, index + 1),
            _ if message[index..].starts_with(&ATTRIBUTE_MARK_UTF8) => return (index, index + ATTRIBUTE_MARK_UTF8.len()),
            _ => index += 1,
        }
    }
    (message.len(), message.len())
}

/// Splits a field's first line into its name and the position after the colon, or returns
/// `None` when the line is not a field. A name is printable ASCII without spaces or ':'; the
/// obsolete syntax of RFC 5322 allows spaces before the colon.
fn split_field_name(line: &[u8]) -> Option<(&[u8], usize)> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    let name_end = name.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |last| last + 1);
    let name = &name[..name_end];
    if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
        return None;
    }
    Some((name, colon + 1))
}

/// Returns the message without the fields named `name`: every other byte stays as it was.
pub fn without_fields(message: &[u8], fields: &[Field<'_>], name: &str) -> Vec<u8> {
    let mut remaining = Vec::with_capacity(message.len());
    let mut copied_up_to = 0;
    for field in fields.iter().filter(|field| field.is_named(name)) {
        remaining.extend_from_slice(&message[copied_up_to..field.span.start]);
        copied_up_to = field.span.end;
    }
    remaining.extend_from_slice(&message[copied_up_to..]);
    remaining
}

/// Extracts the addresses of an address list (RFC 5322 section 3.4), such as
/// `"Smith, John" <js@example.test>, Team: a@example.test (Ann), b@example.test;`.
///
/// Display names, comments, group names and obsolete routes are dropped, and an empty group
/// such as `undisclosed-recipients:;` gives no address. Quoted local parts keep their
/// quotes. The addresses are not validated here: the library checks each one.
pub fn addresses(value: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text = remove_comments(value)?;

    let mut addresses = Vec::new();
    for entry in split_entries(&text)? {
        if let Some(address) = entry_address(&entry)? {
            addresses.push(address);
        }
    }
    Ok(addresses)
}

/// Replaces each comment, nested ones included, with a space. Parentheses inside quoted
/// strings are text, and a backslash escapes the next byte in both.
fn remove_comments(value: &[u8]) -> Result<Vec<u8>, String> {
    let mut text = Vec::with_capacity(value.len());
    let mut depth = 0usize;
    let mut in_quotes = false;
    let mut index = 0;
    while index < value.len() {
        let byte = value[index];
        if depth > 0 {
            match byte {
                b'\\' => index += 1,
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        text.push(b' ');
                    }
                }
                _ => {}
            }
        } else if in_quotes {
            text.push(byte);
            match byte {
                b'\\' if index + 1 < value.len() => {
                    index += 1;
                    text.push(value[index]);
                }
                b'"' => in_quotes = false,
                _ => {}
            }
        } else {
            match byte {
                b'(' => depth = 1,
                b'"' => {
                    in_quotes = true;
                    text.push(byte);
                }
                _ => text.push(byte),
            }
        }
        index += 1;
    }

    if depth > 0 {
        return Err("has a '(' that is never closed".into());
    }
    if in_quotes {
        return Err("has a double quote that is never closed".into());
    }
    Ok(text)
}

/// Splits a list without comments into its mailbox entries: at commas outside quotes and
/// angle brackets, and at the ':' and ';' of a group, whose name is dropped.
fn split_entries(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut entries = Vec::new();
    let mut current = Vec::new();
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut index = 0;
    while index < text.len() {
        let byte = text[index];
        match byte {
            b'\\' if in_quotes && index + 1 < text.len() => {
                current.extend_from_slice(&text[index..index + 2]);
                index += 1;
            }
            b'"' => {
                in_quotes = !in_quotes;
                current.push(byte);
            }
            _ if in_quotes => current.push(byte),
            b'<' => {
                in_angle = true;
                current.push(byte);
            }
            b'>' => {
                in_angle = false;
                current.push(byte);
            }
            _ if in_angle => current.push(byte),
            b',' | b';' => entries.push(std::mem::take(&mut current)),
            b':' => current.clear(),
            _ => current.push(byte),
        }
        index += 1;
    }
    if in_angle {
        return Err("has a '<' without a closing '>'".into());
    }
    entries.push(current);
    Ok(entries)
}

/// Returns the address of one entry, `Name <address>` or a bare address, or `None` for an
/// empty entry and for `<>`.
fn entry_address(entry: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let Some(open) = find_unquoted(entry, b'<') else {
        let address = without_unquoted_spaces(entry);
        // Words without an '@' are a name alone, such as "From: Billing Department".
        if !address.is_empty() && !address.contains(&b'@') && entry.trim_ascii().contains(&b' ') {
            return Err(format!(
                "contains no address in \"{}\"; write it as user@example.com or as Name <user@example.com>",
                String::from_utf8_lossy(entry).trim()
            ));
        }
        return Ok((!address.is_empty()).then_some(address));
    };

    let inner_start = open + 1;
    let Some(close) = find_unquoted(&entry[inner_start..], b'>').map(|offset| inner_start + offset) else {
        return Err(format!("has a '<' without a closing '>' in \"{}\"", String::from_utf8_lossy(entry).trim()));
    };
    if !without_unquoted_spaces(&entry[close + 1..]).is_empty() {
        return Err(format!("has text after the closing '>' in \"{}\"", String::from_utf8_lossy(entry).trim()));
    }

    let mut inner = &entry[inner_start..close];
    // An obsolete route such as <@relay.example:user@example.test> ends at its last ':'.
    if without_unquoted_spaces(inner).starts_with(b"@") {
        if let Some(colon) = inner.iter().rposition(|&b| b == b':') {
            inner = &inner[colon + 1..];
        }
    }
    let address = without_unquoted_spaces(inner);
    Ok((!address.is_empty()).then_some(address))
}

/// Removes spaces and tabs outside quoted strings, which RFC 5322 allows around the parts
/// of an address (`john . smith @ example.test`) but which are no part of it.
fn without_unquoted_spaces(text: &[u8]) -> Vec<u8> {
    let mut compacted = Vec::with_capacity(text.len());
    let mut in_quotes = false;
    let mut index = 0;
    while index < text.len() {
        let byte = text[index];
        match byte {
            b'\\' if in_quotes && index + 1 < text.len() => {
                compacted.extend_from_slice(&text[index..index + 2]);
                index += 1;
            }
            b'"' => {
                in_quotes = !in_quotes;
                compacted.push(byte);
            }
            b' ' | b'\t' if !in_quotes => {}
            _ => compacted.push(byte),
        }
        index += 1;
    }
    compacted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(value: &str) -> Vec<String> {
        addresses(value.as_bytes()).unwrap().into_iter().map(|address| String::from_utf8(address).unwrap()).collect()
    }

    #[test]
    fn fields_unfolded_with_spans() {
        let message = b"To: a@example.test,\n  b@example.test\r\nSubject: hi\n\nTo: not a header\n";
        let fields = fields(message);
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].name, b"To");
        assert_eq!(fields[0].value, b" a@example.test,  b@example.test");
        assert_eq!(&message[fields[0].span.clone()], b"To: a@example.test,\n  b@example.test\r\n");
        assert_eq!(fields[1].value, b" hi");
    }

    #[test]
    fn fields_end_at_first_body_line() {
        let fields = fields(b"Subject: x\nthis line has no colon\nTo: b@example.test\n");
        assert_eq!(fields.len(), 1);
    }

    #[test]
    fn fields_split_on_attribute_marks() {
        let message = "Subject: x\u{f8fe}Bcc: a@example.test\u{f8fe}\u{f8fe}text".as_bytes();
        let fields = fields(message);
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].value, b" a@example.test");
        let fields = super::fields(b"Subject: x\xfeCc: c@example.test\xfe\xfetext");
        assert_eq!(fields[1].value, b" c@example.test");
    }

    #[test]
    fn bcc_removed_with_continuations() {
        let message = b"From: f@example.test\nBcc: a@example.test,\n\tb@example.test\nSubject: s\nbcc: c@example.test\n\nBcc: body line\n";
        let removed = without_fields(message, &fields(message), "Bcc");
        assert_eq!(removed, b"From: f@example.test\nSubject: s\n\nBcc: body line\n");
    }

    #[test]
    fn display_names_and_quotes() {
        assert_eq!(
            list(r#""Smith, John" <js@example.test>, Ann <ann@example.test>, bare@example.test"#),
            ["js@example.test", "ann@example.test", "bare@example.test"]
        );
        assert_eq!(list(r#""quoted \" , name" <q@example.test>"#), ["q@example.test"]);
    }

    #[test]
    fn name_without_address_rejected() {
        let problem = addresses(b"Billing Department").unwrap_err();
        assert!(problem.contains("no address in \"Billing Department\""), "{problem}");
        assert_eq!(list("undisclosed-recipients:;"), Vec::<String>::new());
        assert_eq!(list("john . smith @ example.test"), ["john.smith@example.test"]);
    }

    #[test]
    fn comments_dropped() {
        assert_eq!(list("old@example.test (Old Style, Name), x@example.test (a (nested) comment)"), ["old@example.test", "x@example.test"]);
        assert_eq!(list(r#""(not a comment)" <p@example.test>"#), ["p@example.test"]);
    }

    #[test]
    fn groups_flattened() {
        assert_eq!(list("undisclosed-recipients:;"), Vec::<String>::new());
        assert_eq!(list("Team: a@example.test, B <b@example.test>; c@example.test"), ["a@example.test", "b@example.test", "c@example.test"]);
    }

    #[test]
    fn quoted_local_part_kept() {
        assert_eq!(list(r#"<"john smith"@example.test>, "a,b"@example.test"#), [r#""john smith"@example.test"#, r#""a,b"@example.test"#]);
    }

    #[test]
    fn route_and_spaces_dropped() {
        assert_eq!(list("<@relay.example.test:user@example.test>"), ["user@example.test"]);
        assert_eq!(list(" john . smith @ example.test "), ["john.smith@example.test"]);
    }

    #[test]
    fn empty_entries_skipped() {
        assert_eq!(list(" , <>, a@example.test,"), ["a@example.test"]);
        assert_eq!(list(""), Vec::<String>::new());
    }

    #[test]
    fn malformed_lists_rejected() {
        assert!(addresses(b"\"open quote <a@example.test>").unwrap_err().contains("double quote"));
        assert!(addresses(b"(open comment a@example.test").unwrap_err().contains("'('"));
        assert!(addresses(b"Name <a@example.test").unwrap_err().contains("'>'"));
        assert!(addresses(b"<a@example.test> trailing").unwrap_err().contains("after the closing"));
    }
}
