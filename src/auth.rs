//! SMTP authentication (RFC 4954) with the SASL mechanisms PLAIN (RFC 4616), LOGIN,
//! CRAM-MD5 (RFC 2195) and XOAUTH2 (the bearer-token form that Gmail and Microsoft 365 use).
//!
//! This module only encodes what goes on the wire. The session sends it and records it in
//! the transcript as a placeholder, so credentials never appear there.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::Md5;

use crate::secret::Secret;

/// A SASL mechanism that the library can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    CramMd5,
    XOAuth2,
}

impl Mechanism {
    /// Returns the mechanism's name as servers advertise it.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }

    /// Parses a mechanism name in any letter case.
    pub fn parse(name: &str) -> Option<Mechanism> {
        [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5, Mechanism::XOAuth2]
            .into_iter()
            .find(|mechanism| mechanism.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The credentials of a call: a user name with a password, an OAuth 2.0 access token, or both.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: Option<Secret>,
    pub oauth_token: Option<Secret>,
}

/// Picks the mechanism for `auto`: XOAUTH2 when only a token is set, else the first of the
/// password mechanisms that the server offers. Over TLS PLAIN comes first, as it needs one
/// round trip. Without TLS (only with `insecure_plaintext_auth`) CRAM-MD5 comes first,
/// because it never sends the password itself.
pub fn choose(offered: &[String], credentials: &Credentials, encrypted: bool) -> Option<Mechanism> {
    let offers = |mechanism: Mechanism| offered.iter().any(|name| name.eq_ignore_ascii_case(mechanism.name()));
    if credentials.password.is_none() {
        return (credentials.oauth_token.is_some() && offers(Mechanism::XOAuth2)).then_some(Mechanism::XOAuth2);
    }
    let preference: &[Mechanism] = if encrypted {
        &[Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5]
    } else {
        &[Mechanism::CramMd5, Mechanism::Plain, Mechanism::Login]
    };
    preference.iter().copied().find(|&mechanism| offers(mechanism))
}

/// Encodes the PLAIN initial response: base64 of NUL, user, NUL, password.
pub fn plain_response(user: &str, password: &Secret) -> Secret {
    let mut message = Vec::with_capacity(user.len() + password.expose().len() + 2);
    message.push(0);
    message.extend_from_slice(user.as_bytes());
    message.push(0);
    message.extend_from_slice(password.expose());
    let encoded = Secret::new(BASE64.encode(&message).as_bytes());
    message.fill(0);
    encoded
}

/// Encodes one step of LOGIN: base64 of the user name or of the password.
pub fn login_response(value: &[u8]) -> Secret {
    Secret::new(BASE64.encode(value).as_bytes())
}

/// Computes the CRAM-MD5 response to a base64 challenge: base64 of the user, a space, and the
/// hexadecimal HMAC-MD5 of the challenge keyed with the password. `None` when the challenge
/// is not valid base64.
pub fn cram_md5_response(challenge_base64: &str, user: &str, password: &Secret) -> Option<Secret> {
    let challenge = BASE64.decode(challenge_base64.trim()).ok()?;
    let mut mac = Hmac::<Md5>::new_from_slice(password.expose()).ok()?;
    mac.update(&challenge);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    Some(Secret::new(BASE64.encode(format!("{user} {hex}")).as_bytes()))
}

/// Encodes the XOAUTH2 initial response: base64 of `user=U ^A auth=Bearer T ^A ^A`.
pub fn xoauth2_response(user: &str, token: &Secret) -> Secret {
    let mut message = format!("user={user}\x01auth=Bearer ").into_bytes();
    message.extend_from_slice(token.expose());
    message.extend_from_slice(b"\x01\x01");
    let encoded = Secret::new(BASE64.encode(&message).as_bytes());
    message.fill(0);
    encoded
}

/// Decodes a base64 server challenge for messages, such as the JSON error of a failed
/// XOAUTH2 attempt. Control characters are dropped.
pub fn decode_challenge(text: &str) -> Option<String> {
    let bytes = BASE64.decode(text.trim()).ok()?;
    Some(String::from_utf8_lossy(&bytes).chars().filter(|ch| !ch.is_control()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(password: Option<&str>, token: Option<&str>) -> Credentials {
        Credentials {
            user: "user@example.test".into(),
            password: password.map(|p| Secret::new(p.as_bytes())),
            oauth_token: token.map(|t| Secret::new(t.as_bytes())),
        }
    }

    fn offered(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn plain_encoding() {
        let response = plain_response("tim", &Secret::new(b"tanstaaftanstaaf"));
        assert_eq!(response.expose(), b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    }

    #[test]
    fn cram_md5_known_answer() {
        // The example exchange of RFC 2195, section 2.
        let challenge = BASE64.encode("<1896.697170952@postoffice.reston.mci.net>");
        let response = cram_md5_response(&challenge, "tim", &Secret::new(b"tanstaaftanstaaf")).unwrap();
        let decoded = BASE64.decode(response.expose()).unwrap();
        assert_eq!(decoded, b"tim b913a602c7eda7a495b4e6e7334d3890");
    }

    #[test]
    fn xoauth2_encoding() {
        let response = xoauth2_response("someuser@example.com", &Secret::new(b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"));
        let decoded = BASE64.decode(response.expose()).unwrap();
        assert_eq!(decoded, b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01");
    }

    #[test]
    fn auto_prefers_plain_over_tls() {
        let choice = choose(&offered(&["LOGIN", "CRAM-MD5", "PLAIN"]), &credentials(Some("p"), None), true);
        assert_eq!(choice, Some(Mechanism::Plain));
    }

    #[test]
    fn auto_prefers_cram_md5_without_tls() {
        let choice = choose(&offered(&["plain", "cram-md5"]), &credentials(Some("p"), None), false);
        assert_eq!(choice, Some(Mechanism::CramMd5));
    }

    #[test]
    fn auto_uses_token_when_only_token() {
        let choice = choose(&offered(&["LOGIN", "XOAUTH2"]), &credentials(None, Some("t")), true);
        assert_eq!(choice, Some(Mechanism::XOAuth2));
        assert_eq!(choose(&offered(&["LOGIN"]), &credentials(None, Some("t")), true), None);
    }

    #[test]
    fn no_common_mechanism() {
        assert_eq!(choose(&offered(&["GSSAPI", "NTLM"]), &credentials(Some("p"), None), true), None);
    }

    #[test]
    fn challenge_decoded() {
        let json = BASE64.encode("{\"status\":\"401\",\"schemes\":\"bearer\"}\n");
        assert_eq!(decode_challenge(&json).unwrap(), "{\"status\":\"401\",\"schemes\":\"bearer\"}");
    }

    #[test]
    fn mechanism_names_round_trip() {
        for mechanism in [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5, Mechanism::XOAuth2] {
            assert_eq!(Mechanism::parse(&mechanism.name().to_lowercase()), Some(mechanism));
        }
    }
}
