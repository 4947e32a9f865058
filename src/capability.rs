//! Service extensions that a server advertises in its EHLO reply (RFC 5321, section 4.1.1.1).
//!
//! Keywords are compared case-insensitively. Lines that are not a valid keyword are skipped,
//! because a server's odd extension line must never break the session.

use crate::reply::Reply;

/// The extensions of one EHLO reply. Empty after HELO, which advertises none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Each extension as an upper-case keyword with its parameters, in the server's order.
    extensions: Vec<(String, Vec<String>)>,
}

impl Capabilities {
    /// Reads the extensions from an EHLO reply. The first line is the server's greeting
    /// name, so it is skipped.
    pub fn from_ehlo(reply: &Reply) -> Self {
        let extensions = reply
            .lines
            .iter()
            .skip(1)
            .filter_map(|line| {
                let mut words = line.split_ascii_whitespace();
                let keyword = words.next()?;
                if !is_keyword(keyword) {
                    return None;
                }
                let parameters = words.map(str::to_owned).collect();
                Some((keyword.to_ascii_uppercase(), parameters))
            })
            .collect();
        Capabilities { extensions }
    }

    /// Reports whether the server advertised the keyword, in any letter case.
    pub fn has(&self, keyword: &str) -> bool {
        self.parameters(keyword).is_some()
    }

    /// Returns the parameters of an advertised keyword.
    pub fn parameters(&self, keyword: &str) -> Option<&[String]> {
        self.extensions
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(keyword))
            .map(|(_, parameters)| parameters.as_slice())
    }
}

/// An EHLO keyword is a letter or digit followed by letters, digits and hyphens.
fn is_keyword(word: &str) -> bool {
    let mut bytes = word.bytes();
    matches!(bytes.next(), Some(first) if first.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(lines: &[&str]) -> Capabilities {
        Capabilities::from_ehlo(&Reply { code: 250, enhanced: None, lines: lines.iter().map(|s| s.to_string()).collect() })
    }

    #[test]
    fn keywords_case_insensitive() {
        let caps = ehlo(&["mail.example.test", "pipelining", "8BitMime", "SIZE 10240000"]);
        assert!(caps.has("PIPELINING"));
        assert!(caps.has("8bitmime"));
        assert_eq!(caps.parameters("size"), Some(&["10240000".to_string()][..]));
    }

    #[test]
    fn greeting_line_not_a_keyword() {
        let caps = ehlo(&["PIPELINING"]);
        assert!(!caps.has("PIPELINING"));
    }

    #[test]
    fn odd_lines_skipped() {
        let caps = ehlo(&["host", "", "    ", "-bad", "AUTH PLAIN LOGIN", "X_UNDERSCORE"]);
        assert!(caps.has("AUTH"));
        assert!(!caps.has("-bad"));
        assert!(!caps.has("X_UNDERSCORE"));
        assert_eq!(caps.parameters("auth").unwrap().len(), 2);
    }
}
