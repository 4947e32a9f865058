//! A password or token that must never reach a transcript, an error message, a log or a
//! panic message.

use std::fmt;

/// A secret value. `Debug` and `Display` print a placeholder, and the bytes are overwritten
/// when the value is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: &[u8]) -> Self {
        Secret(bytes.to_vec())
    }

    /// Returns the secret bytes, for the one place that must send them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for byte in self.0.iter_mut() {
            // SAFETY: `byte` is a valid, aligned, exclusive reference. The volatile write keeps
            // the compiler from removing the overwrite of memory that is about to be freed.
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_hides_value() {
        let secret = Secret::new(b"hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "<hidden> <hidden>");
        assert_eq!(secret.expose(), b"hunter2");
    }
}
