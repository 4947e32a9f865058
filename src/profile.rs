//! Named option profiles in a configuration file, selected with the option `profile=NAME`.
//!
//! A profile keeps the server, the account and the password out of program source: a BASIC
//! program names the profile, and the administrator keeps the values in a file that only
//! the account running the program can read.
//!
//! # File format
//!
//! ```text
//! # Relay for the invoicing programs.
//! [invoices]
//! host = smtp.example.test
//! port = 587
//! user = invoices@example.test
//! password = s3cret=#; with spaces
//!
//! [alerts.night]
//! host = 127.0.0.1
//! ```
//!
//! - `[name]` starts a profile. A name contains ASCII letters, digits, `-`, `_` and `.`,
//!   and is case-sensitive. A name may appear only once in a file.
//! - Every other line is `option = value`. The first `=` separates the two, and spaces
//!   around the option name and around the value are removed. The value keeps everything
//!   else, including `=`, `;`, `#` and inner spaces, so any password can be written as is.
//! - Blank lines and lines whose first non-space character is `#` are comments. A `#` later
//!   in a line is part of the value.
//! - An option that appears twice in a profile is kept twice, in file order, so the later
//!   line wins when the entries are applied in order.
//! - An option line before the first `[name]`, a line without `=`, an empty option name, an
//!   unterminated `[` and a repeated profile name are errors naming the file and the line.
//!
//! This module only reads the file. Option names and values are checked by the options
//! module when the entries are applied.
//!
//! # Where the file is looked for
//!
//! When the environment variable `MVSMTP_CONFIG` is set and not empty, only that file is
//! read, and it must exist. Otherwise `$HOME/.mvsmtp.conf` is read first and
//! `/etc/mvsmtp.conf` second. Missing files are skipped, and the first file that defines
//! the profile is used.
//!
//! # Permissions
//!
//! On Unix, a profile that contains `password` or `oauth_token` is refused when its file
//! grants any permission to the group or to other users, because they could read the secret.
//! The error message gives the fix, `chmod 600` on the file.
//!
//! Errors about a file name the file, the line and at most a valid profile name, but never
//! show other text from the file, so that no secret reaches a log through an error.

use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use crate::address::escape_for_message;
use crate::error::Error;

/// The environment variable that names the only configuration file to read.
pub const CONFIG_ENV: &str = "MVSMTP_CONFIG";

/// The per-user configuration file, relative to `$HOME`.
pub const USER_CONFIG_NAME: &str = ".mvsmtp.conf";

/// The system-wide configuration file, read after the per-user one.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/mvsmtp.conf";

/// Option names whose values are secrets: they make the permission check apply and are
/// hidden from `Debug` output.
pub const SECRET_OPTIONS: &[&str] = &["password", "oauth_token"];

/// The largest configuration file read, in bytes. A real file is a few kilobytes, and the
/// limit stops a mistaken path such as `/dev/zero` from filling memory.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The `option = value` lines of one profile, trimmed, in file order.
pub type Entries = Vec<(String, String)>;

/// The profile that was found, with the file it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct LoadedProfile {
    /// The configuration file that defines the profile.
    pub path: PathBuf,
    /// The `option = value` lines of the profile, trimmed, in file order.
    pub entries: Entries,
}

impl fmt::Debug for LoadedProfile {
    /// Formats the profile with the values of secret options replaced by `***`, so that a
    /// debug print cannot leak a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<(&str, &str)> = self
            .entries
            .iter()
            .map(|(name, value)| {
                let displayed_value = if is_secret_option(name) { "***" } else { value.as_str() };
                (name.as_str(), displayed_value)
            })
            .collect();
        f.debug_struct("LoadedProfile").field("path", &self.path).field("entries", &entries).finish()
    }
}

/// Loads the profile `name` from the file named by `MVSMTP_CONFIG`, or else from the first
/// of `$HOME/.mvsmtp.conf` and `/etc/mvsmtp.conf` that defines it.
pub fn load_profile(name: &str) -> Result<LoadedProfile, Error> {
    match std::env::var_os(CONFIG_ENV) {
        Some(path) if !path.is_empty() => load_profile_from(&[PathBuf::from(path)], name, true),
        _ => load_profile_from(&default_paths(), name, false),
    }
}

/// Lists the files searched when `MVSMTP_CONFIG` is not set: the per-user file when `HOME`
/// is set, then the system file.
pub fn default_paths() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        paths.push(PathBuf::from(home).join(USER_CONFIG_NAME));
    }
    paths.push(PathBuf::from(SYSTEM_CONFIG_PATH));
    paths
}

/// Loads the profile `name` from the first of `paths` that defines it.
///
/// `explicit` means the paths came from `MVSMTP_CONFIG`: then a missing file is an error
/// instead of being skipped. A file that exists but cannot be read or parsed is an error
/// in both cases, even when a later file would define the profile.
pub fn load_profile_from(paths: &[PathBuf], name: &str, explicit: bool) -> Result<LoadedProfile, Error> {
    check_profile_name(name)?;

    let mut searched = Vec::new();
    for path in paths {
        let Some(config) = read_config(path, explicit)? else {
            searched.push(format!("{} (missing)", path.display()));
            continue;
        };
        searched.push(path.display().to_string());

        let profiles = parse_config(&config.text, path)?;
        if !profiles.iter().any(|(profile, _)| profile == name) {
            continue;
        }

        // A file that contains a secret in any profile must be private, whichever profile is used.
        let all_entries: Vec<(String, String)> = profiles.iter().flat_map(|(_, entries)| entries.iter().cloned()).collect();
        check_permissions(path, &config, &all_entries)?;
        let entries = profiles.into_iter().find(|(profile, _)| profile == name).map(|(_, entries)| entries).unwrap_or_default();
        return Ok(LoadedProfile { path: path.clone(), entries });
    }

    Err(profile_not_found(name, &searched, explicit))
}

/// Parses the text of a configuration file into its profiles, in file order. `path` is
/// only used to name the file in errors.
pub fn parse_config(text: &str, path: &Path) -> Result<Vec<(String, Entries)>, Error> {
    let mut profiles: Vec<(String, Entries)> = Vec::new();
    let mut first_lines: Vec<usize> = Vec::new();

    for (index, raw_line) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw_line.trim();

        if line.is_empty() || line.starts_with('#') {
            continue;
        }

        if let Some(header) = line.strip_prefix('[') {
            let name = parse_section_header(header, path, number)?;
            if let Some(previous) = profiles.iter().position(|(existing, _)| *existing == name) {
                return Err(line_error(
                    path,
                    number,
                    &format!(
                        "defines the profile [{name}] again, which line {} already defines. Rename or merge one of them",
                        first_lines[previous]
                    ),
                ));
            }
            profiles.push((name, Vec::new()));
            first_lines.push(number);
            continue;
        }

        let Some((option, value)) = line.split_once('=') else {
            return Err(line_error(path, number, "has no '='. Write options as name = value, or start a comment with #"));
        };
        let option = option.trim();
        if option.is_empty() {
            return Err(line_error(path, number, "has no option name before '='. Write options as name = value"));
        }
        let Some((_, entries)) = profiles.last_mut() else {
            return Err(line_error(path, number, "sets an option before any [name] line. Put a [name] line above it"));
        };
        entries.push((option.to_string(), value.trim().to_string()));
    }

    Ok(profiles)
}

/// Checks a profile name requested by the caller.
fn check_profile_name(name: &str) -> Result<(), Error> {
    if is_profile_name(name) {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "Invalid profile name \"{}\": use ASCII letters, digits, '-', '_' and '.'.",
        escape_for_message(name.as_bytes())
    )))
}

fn is_profile_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

fn is_secret_option(name: &str) -> bool {
    SECRET_OPTIONS.iter().any(|secret| name.eq_ignore_ascii_case(secret))
}

/// Parses the rest of a `[name]` line after its `[`.
fn parse_section_header(header: &str, path: &Path, number: usize) -> Result<String, Error> {
    // The line was trimmed, so a terminated header ends in ']'. Errors do not show the text
    // after the '[', because it may be a value that lost its "name =".
    let Some(inner) = header.strip_suffix(']') else {
        return Err(line_error(path, number, "has a '[' without a closing ']'. Write profile lines as [name]"));
    };
    let name = inner.trim();
    if !is_profile_name(name) {
        return Err(line_error(
            path,
            number,
            "has an invalid profile name between '[' and ']'. Use ASCII letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(name.to_string())
}

fn line_error(path: &Path, number: usize, problem: &str) -> Error {
    Error::InvalidArgument(format!("Configuration file {} line {number} {problem}.", path.display()))
}

/// The text of a configuration file and the permission bits of the opened file.
struct ConfigFile {
    text: String,
    #[cfg(unix)]
    mode: u32,
}

/// Reads a configuration file. Returns `None` for a missing file unless `explicit` is set.
fn read_config(path: &Path, explicit: bool) -> Result<Option<ConfigFile>, Error> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound && !explicit => return Ok(None),
        Err(error) if error.kind() == ErrorKind::NotFound => {
            return Err(Error::InvalidArgument(format!(
                "The configuration file {} named by {CONFIG_ENV} does not exist. Create it, or correct or unset {CONFIG_ENV}.",
                path.display()
            )));
        }
        Err(error) => return Err(read_failed(path, &error)),
    };

    // The mode comes from the opened file rather than the path, so it describes the file
    // that was actually read even if the path is replaced in between.
    let metadata = file.metadata().map_err(|error| read_failed(path, &error))?;
    if metadata.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "The configuration file {} is a directory. Point to a file instead.",
            path.display()
        )));
    }

    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).map_err(|error| read_failed(path, &error))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::InvalidArgument(format!(
            "The configuration file {} is larger than {MAX_CONFIG_BYTES} bytes. Check that the path names a configuration file.",
            path.display()
        )));
    }

    let text = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let number = valid.iter().filter(|&&byte| byte == b'\n').count() + 1;
        line_error(path, number, "is not valid UTF-8. Save the file as UTF-8")
    })?;

    Ok(Some(ConfigFile {
        text,
        #[cfg(unix)]
        mode: std::os::unix::fs::MetadataExt::mode(&metadata),
    }))
}

fn read_failed(path: &Path, error: &std::io::Error) -> Error {
    Error::InvalidArgument(format!(
        "Reading the configuration file {} failed: {error}. Check that the file exists and that this account may read it.",
        path.display()
    ))
}

/// Refuses a configuration file that contains a secret when the group or other users may
/// access it.
#[cfg(unix)]
fn check_permissions(path: &Path, config: &ConfigFile, entries: &[(String, String)]) -> Result<(), Error> {
    let has_secret = entries.iter().any(|(name, _)| is_secret_option(name));
    if !has_secret || config.mode & 0o077 == 0 {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "The configuration file {path} contains a password but other users can read it (mode {mode:04o}). Run chmod 600 {path} to allow access only to its owner.",
        path = path.display(),
        mode = config.mode & 0o7777
    )))
}

// NOTE: on other systems the file's access rights are not checked.
#[cfg(not(unix))]
fn check_permissions(_path: &Path, _config: &ConfigFile, _entries: &[(String, String)]) -> Result<(), Error> {
    Ok(())
}

fn profile_not_found(name: &str, searched: &[String], explicit: bool) -> Error {
    let advice = if explicit {
        format!("Add a [{name}] section to that file, or correct {CONFIG_ENV}.")
    } else {
        format!("Add a [{name}] section to one of them, or set {CONFIG_ENV} to the file that defines it.")
    };
    let files = if searched.is_empty() { "no configuration file".to_string() } else { searched.join(", ") };
    Error::InvalidArgument(format!("Profile \"{name}\" was not found in {files}. {advice}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    const PASSWORD: &str = "Sup3r=Secret; #pass word";

    /// A file under the temporary directory that is removed when the test ends.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str, mode: u32) -> TempFile {
            let file = TempFile(unique_path());
            std::fs::write(&file.0, text).unwrap();
            set_mode(&file.0, mode);
            file
        }

        fn missing() -> TempFile {
            TempFile(unique_path())
        }

        fn path(&self) -> PathBuf {
            self.0.clone()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn unique_path() -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("mvsmtp-profile-test-{}-{count}.conf", std::process::id()))
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(not(unix))]
    fn set_mode(_path: &Path, _mode: u32) {}

    fn parse(text: &str) -> Result<Vec<(String, Entries)>, Error> {
        parse_config(text, Path::new("/test/mvsmtp.conf"))
    }

    fn entry(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    fn error_text(result: Result<impl fmt::Debug, Error>) -> String {
        match result {
            Err(Error::InvalidArgument(text)) => text,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn parse_profiles_in_order() {
        let text = "# comment\n\n[first]\nhost = a.test\n  # indented comment\nport=25\n\n[second.b-c_d]\nhost=b.test\n";
        let profiles = parse(text).unwrap();

        assert_eq!(profiles.len(), 2);
        assert_eq!(profiles[0].0, "first");
        assert_eq!(profiles[0].1, vec![entry("host", "a.test"), entry("port", "25")]);
        assert_eq!(profiles[1].0, "second.b-c_d");
        assert_eq!(profiles[1].1, vec![entry("host", "b.test")]);
    }

    #[test]
    fn parse_value_keeps_special_characters() {
        let text = format!("[p]\n  password  =   {PASSWORD}   \nnote = a=b # not a comment\n");
        let profiles = parse(&text).unwrap();

        assert_eq!(profiles[0].1[0], entry("password", PASSWORD));
        assert_eq!(profiles[0].1[1], entry("note", "a=b # not a comment"));
    }

    #[test]
    fn parse_empty_value_and_crlf() {
        let profiles = parse("[p]\r\nhelo =\r\n[ q ]\r\nhost = x\r\n").unwrap();

        assert_eq!(profiles[0].1, vec![entry("helo", "")]);
        assert_eq!(profiles[1].0, "q");
        assert_eq!(profiles[1].1, vec![entry("host", "x")]);
    }

    #[test]
    fn parse_keeps_repeated_options() {
        let profiles = parse("[p]\ntimeout=5\ntimeout=9\n").unwrap();
        assert_eq!(profiles[0].1, vec![entry("timeout", "5"), entry("timeout", "9")]);
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let cases = [
            ("host = a\n", "line 1 ", "before any [name] line"),
            ("[p]\nhost a\n", "line 2 ", "has no '='"),
            ("[p]\n\n = value\n", "line 3 ", "no option name"),
            ("# c\n[p\nhost=a\n", "line 2 ", "without a closing ']'"),
            ("[p]\n[]\n", "line 2 ", "invalid profile name"),
            ("[p]\n[a b]\n", "line 2 ", "invalid profile name"),
            ("[p]\nx=1\n[q]\n[p]\n", "line 4 ", "line 1 already defines"),
        ];
        for (text, line, problem) in cases {
            let message = error_text(parse(text));
            assert!(message.contains("/test/mvsmtp.conf"), "{text:?}: {message}");
            assert!(message.contains(line), "{text:?}: {message}");
            assert!(message.contains(problem), "{text:?}: {message}");
        }
    }

    #[test]
    fn parse_errors_hide_values() {
        let cases = [
            format!("password = {PASSWORD}\n"),
            "[p]\nSup3rSecret; #pass word\n".to_string(),
            format!("[{PASSWORD}\n"),
            format!("[p]\n[{PASSWORD}]\n"),
        ];
        for text in cases {
            let message = error_text(parse(&text));
            assert!(!message.contains("Sup3r"), "{message}");
        }
    }

    #[test]
    fn profile_name_checked() {
        for name in ["", "a b", "a/b", "[x]", "x\n"] {
            let message = error_text(load_profile_from(&[], name, false));
            assert!(message.contains("Invalid profile name"), "{name:?}: {message}");
        }
    }

    #[test]
    fn first_file_with_profile_wins() {
        let user = TempFile::new("[other]\nhost=user.test\n[both]\nhost=user.test\n", 0o600);
        let system = TempFile::new("[both]\nhost=system.test\n[only-system]\nhost=system.test\n", 0o644);
        let missing = TempFile::missing();
        let paths = [missing.path(), user.path(), system.path()];

        let both = load_profile_from(&paths, "both", false).unwrap();
        assert_eq!(both.path, user.path());
        assert_eq!(both.entries, vec![entry("host", "user.test")]);

        let only_system = load_profile_from(&paths, "only-system", false).unwrap();
        assert_eq!(only_system.path, system.path());
        assert_eq!(only_system.entries, vec![entry("host", "system.test")]);
    }

    #[test]
    fn profile_not_found_lists_files() {
        let user = TempFile::new("[a]\nhost=x\n", 0o600);
        let missing = TempFile::missing();
        let paths = [user.path(), missing.path()];

        let message = error_text(load_profile_from(&paths, "nope", false));
        assert!(message.contains("\"nope\""), "{message}");
        assert!(message.contains(&user.path().display().to_string()), "{message}");
        assert!(message.contains(&format!("{} (missing)", missing.path().display())), "{message}");
    }

    #[test]
    fn explicit_file_must_exist() {
        let missing = TempFile::missing();
        let message = error_text(load_profile_from(&[missing.path()], "a", true));

        assert!(message.contains(&missing.path().display().to_string()), "{message}");
        assert!(message.contains("does not exist"), "{message}");
        assert!(message.contains(CONFIG_ENV), "{message}");
    }

    #[test]
    fn explicit_file_without_profile() {
        let file = TempFile::new("[a]\nhost=x\n", 0o600);
        let message = error_text(load_profile_from(&[file.path()], "b", true));

        assert!(message.contains("was not found"), "{message}");
        assert!(message.contains(&file.path().display().to_string()), "{message}");
    }

    #[test]
    fn parse_error_in_earlier_file_reported() {
        let broken = TempFile::new("[a]\nno equals sign\n", 0o600);
        let good = TempFile::new("[a]\nhost=x\n", 0o600);
        let message = error_text(load_profile_from(&[broken.path(), good.path()], "a", false));

        assert!(message.contains(&broken.path().display().to_string()), "{message}");
        assert!(message.contains("line 2 "), "{message}");
    }

    #[test]
    fn directory_rejected() {
        let message = error_text(load_profile_from(&[std::env::temp_dir()], "a", false));
        assert!(message.contains("is a directory"), "{message}");
    }

    #[test]
    fn invalid_utf8_names_line() {
        let path = unique_path();
        std::fs::write(&path, b"[a]\nhost=x\npassword=\xE9t\xE9\n").unwrap();
        let result = load_profile_from(std::slice::from_ref(&path), "a", false);
        std::fs::remove_file(&path).unwrap();

        let message = error_text(result);
        assert!(message.contains("line 3 "), "{message}");
        assert!(message.contains("UTF-8"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn readable_password_file_rejected() {
        for (option, mode) in [("password", 0o644), ("password", 0o640), ("oauth_token", 0o604), ("Password", 0o660)] {
            let file = TempFile::new(&format!("[mail]\nhost=x\n{option} = {PASSWORD}\n"), mode);
            let message = error_text(load_profile_from(&[file.path()], "mail", false));
            let path = file.path().display().to_string();

            assert!(message.contains(&path), "{option} {mode:o}: {message}");
            assert!(message.contains("other users can read it"), "{option} {mode:o}: {message}");
            assert!(message.contains(&format!("chmod 600 {path}")), "{option} {mode:o}: {message}");
            assert!(!message.contains("Sup3r"), "{option} {mode:o}: {message}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn private_password_file_accepted() {
        for mode in [0o600, 0o400] {
            let file = TempFile::new(&format!("[mail]\npassword = {PASSWORD}\n"), mode);
            let profile = load_profile_from(&[file.path()], "mail", false).unwrap();
            assert_eq!(profile.entries, vec![entry("password", PASSWORD)]);
        }
    }

    #[cfg(unix)]
    #[test]
    fn readable_file_without_secret_accepted() {
        let file = TempFile::new("[public]\nhost=x\n[other]\nport=25\n", 0o644);
        let profile = load_profile_from(&[file.path()], "public", false).unwrap();
        assert_eq!(profile.entries, vec![entry("host", "x")]);
    }

    #[test]
    fn secret_in_other_profile_refused() {
        // The whole file is checked: whoever can read it can read every profile in it.
        let file = TempFile::new(&format!("[public]\nhost=x\n[private]\npassword = {PASSWORD}\n"), 0o644);
        let error = load_profile_from(&[file.path()], "public", false).unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn debug_hides_secrets() {
        let profile = LoadedProfile {
            path: PathBuf::from("/x"),
            entries: vec![entry("host", "mail.test"), entry("password", PASSWORD), entry("oauth_token", PASSWORD)],
        };
        let text = format!("{profile:?}");

        assert!(text.contains("mail.test"), "{text}");
        assert!(!text.contains("Sup3r"), "{text}");
    }
}
