//! Profiles through the C interface: `smtp_send_with` with `profile=NAME`, and the
//! process-wide default set with `smtp_set_option("profile", NAME)`.
//!
//! Every test starts with `config_path()`, which writes one configuration file into a fresh
//! folder and points `MVSMTP_CONFIG` at it, once for the whole test binary. All tests share
//! that file, so tests running in parallel agree on the environment.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, OnceLock};

use common::{postfix, send, send_with, set_option, test_state_dir, unique_address, Outcome};
use mvsmtp::ffi::status::*;

const SENDER: &str = "profiles@example.test";
const PASSWORD: &str = "testpass";
const BODY: &[u8] = b"Subject: profile\r\n\r\nsent with a profile\r\n";

/// The start of the name of each run's folder under target/tmp, followed by the process id.
const CONFIG_FOLDER_PREFIX: &str = "profiles-";

static CONFIG_PATH: OnceLock<PathBuf> = OnceLock::new();
static SETUP: Once = Once::new();

/// Serializes the tests that change the process-wide `profile` default, because the
/// default applies to every call in this process while it is set.
static DEFAULTS_LOCK: Mutex<()> = Mutex::new(());

fn submission_port() -> u16 {
    std::env::var("MVSMTP_TEST_SUBMISSION_PORT").ok().and_then(|port| port.parse().ok()).unwrap_or(2587)
}

fn implicit_port() -> u16 {
    std::env::var("MVSMTP_TEST_IMPLICIT_PORT").ok().and_then(|port| port.parse().ok()).unwrap_or(4465)
}

/// Writes the shared configuration file on the first call, sets `MVSMTP_CONFIG` to it, and
/// returns its path.
fn config_path() -> PathBuf {
    SETUP.call_once(|| {
        use std::os::unix::fs::PermissionsExt;

        let host = postfix().host;
        let ca_file = test_state_dir().join("ca.crt");
        let text = format!(
            "# Written by tests/profiles.rs for one test run.\n\
             \n\
             [submission]\n\
             host = {host}\n\
             port = {port}\n\
             tls = starttls\n\
             tls_ca_file = {ca}\n\
             user = testuser\n\
             password = {PASSWORD}\n\
             timeout = 10\n\
             \n\
             # A profile cannot name another profile.\n\
             [nested]\n\
             profile = submission\n\
             \n\
             # The option name is misspelled.\n\
             [misspelled]\n\
             host = {host}\n\
             pasword = {PASSWORD}\n",
            port = submission_port(),
            ca = ca_file.display()
        );

        // A fresh folder for each run of this binary, named after its process id so that
        // two runs at once do not share it. It stays until a later run removes it.
        let parent = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        remove_folders_of_ended_runs(&parent);
        let dir = parent.join(format!("{CONFIG_FOLDER_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

        let path = dir.join("mvsmtp.conf");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        // Every test calls this function before anything else, and `call_once` blocks them
        // until it returns, so no other test thread reads the environment meanwhile.
        std::env::set_var("MVSMTP_CONFIG", &path);
        CONFIG_PATH.set(path).unwrap();
    });
    CONFIG_PATH.get().expect("the setup stored the path").clone()
}

/// Removes the configuration folders of earlier runs whose process has ended.
fn remove_folders_of_ended_runs(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(CONFIG_FOLDER_PREFIX))
            .and_then(|pid| pid.parse::<i32>().ok())
            .filter(|&pid| pid > 0)
        else {
            continue;
        };
        // kill with signal 0 sends nothing and fails with ESRCH when no such process exists.
        // SAFETY: kill takes no pointers.
        let ended = unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if ended {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn describe(outcome: &Outcome) -> String {
    format!("{} (reply {}): {}\n{}", status_name(outcome.status), outcome.reply_code, outcome.error, outcome.transcript)
}

fn status_name(status: i32) -> String {
    mvsmtp::ffi::status::status_name(status).to_string_lossy().into_owned()
}

fn assert_invalid_without_connecting(outcome: &Outcome) {
    assert_eq!(outcome.status, SMTP_INVALID_ARGUMENT, "{}", describe(outcome));
    assert_eq!(outcome.transcript, "", "the library connected");
    assert_eq!(outcome.reply_code, 0);
    assert!(!outcome.error.contains(PASSWORD), "{}", outcome.error);
}

#[test]
fn profile_delivers_with_starttls_and_auth() {
    let config = config_path();
    let server = postfix();
    let recipient = unique_address("profile");

    let outcome = send_with("profile=submission", SENDER, &recipient, BODY);

    assert_eq!(outcome.status, SMTP_OK, "{} with {}", describe(&outcome), config.display());
    assert!(outcome.transcript.contains(&format!("* Connected to 127.0.0.1:{}", submission_port())), "{}", outcome.transcript);
    assert!(outcome.transcript.contains("C: STARTTLS"), "{}", outcome.transcript);
    assert!(outcome.transcript.contains("C: AUTH "), "{}", outcome.transcript);
    assert!(!outcome.transcript.contains(PASSWORD), "{}", outcome.transcript);
    assert_eq!(server.delivered(&recipient), b"Subject: profile\n\nsent with a profile\n");

    let stored = String::from_utf8_lossy(&server.delivered_raw(&recipient)).into_owned();
    assert!(stored.contains("(Authenticated sender: testuser@example.test)"), "{stored}");
}

#[test]
fn call_options_override_profile() {
    config_path();
    let server = postfix();
    let recipient = unique_address("profile-override");
    let options = format!("profile=submission\nport={}\ntls=implicit", implicit_port());

    let outcome = send_with(&options, SENDER, &recipient, BODY);

    assert_eq!(outcome.status, SMTP_OK, "{}", describe(&outcome));
    assert!(outcome.transcript.contains(&format!("* Connected to 127.0.0.1:{}", implicit_port())), "{}", outcome.transcript);
    assert!(!outcome.transcript.contains("C: STARTTLS"), "{}", outcome.transcript);
    server.delivered(&recipient);
}

#[test]
fn call_options_before_profile_still_override() {
    config_path();
    let server = postfix();
    let recipient = unique_address("profile-order");

    // The profile is applied first, whatever the position of its entry in the list.
    let options = format!("port={}\ntls=implicit\nprofile=submission", implicit_port());
    let outcome = send_with(&options, SENDER, &recipient, BODY);

    assert_eq!(outcome.status, SMTP_OK, "{}", describe(&outcome));
    assert!(outcome.transcript.contains(&format!("* Connected to 127.0.0.1:{}", implicit_port())), "{}", outcome.transcript);
    server.delivered(&recipient);
}

#[test]
fn call_password_overrides_profile() {
    config_path();
    postfix();
    let recipient = unique_address("profile-password");

    let outcome = send_with("profile=submission\npassword=Wr0ng-Pass", SENDER, &recipient, BODY);

    assert_eq!(outcome.status, SMTP_AUTH_FAILED, "{}", describe(&outcome));
    assert_eq!(outcome.reply_code, 535);
    assert!(!outcome.error.contains("Wr0ng-Pass"), "{}", outcome.error);
    assert!(!outcome.transcript.contains("Wr0ng-Pass"), "{}", outcome.transcript);
}

#[test]
fn unknown_profile_invalid() {
    let config = config_path();

    let outcome = send_with("profile=absent", SENDER, &unique_address("profile-absent"), BODY);

    assert_invalid_without_connecting(&outcome);
    assert!(outcome.error.contains("\"absent\""), "{}", outcome.error);
    assert!(outcome.error.contains(&config.display().to_string()), "{}", outcome.error);
}

#[test]
fn invalid_profile_name_invalid() {
    config_path();

    let outcome = send_with("profile=../submission", SENDER, &unique_address("profile-bad-name"), BODY);

    assert_invalid_without_connecting(&outcome);
    assert!(outcome.error.contains("profile"), "{}", outcome.error);
}

#[test]
fn profile_setting_profile_invalid() {
    let config = config_path();

    let outcome = send_with("profile=nested", SENDER, &unique_address("profile-nested"), BODY);

    assert_invalid_without_connecting(&outcome);
    assert!(outcome.error.contains("\"nested\""), "{}", outcome.error);
    assert!(outcome.error.contains(&config.display().to_string()), "{}", outcome.error);
}

#[test]
fn bad_option_name_in_profile_invalid() {
    let config = config_path();

    let outcome = send_with("profile=misspelled", SENDER, &unique_address("profile-misspelled"), BODY);

    assert_invalid_without_connecting(&outcome);
    assert!(outcome.error.contains("\"misspelled\""), "{}", outcome.error);
    assert!(outcome.error.contains(&config.display().to_string()), "{}", outcome.error);
    assert!(outcome.error.contains("unknown option name"), "{}", outcome.error);
    // The line is not shown, because a mistyped line can be part of a password.
    assert!(!outcome.error.contains("pasword"), "{}", outcome.error);
}

#[test]
fn default_profile_used_by_smtp_send() {
    config_path();
    let server = postfix();
    let _defaults = DEFAULTS_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());

    assert_eq!(set_option("profile", "submission"), SMTP_OK);
    let recipient = unique_address("profile-default");
    // host and port come from the arguments, TLS and the credentials from the profile.
    let outcome = send(&server.host, submission_port(), SENDER, recipient.as_bytes(), BODY);
    let reset = set_option("profile", "");

    assert_eq!(reset, SMTP_OK);
    assert_eq!(outcome.status, SMTP_OK, "{}", describe(&outcome));
    assert!(outcome.transcript.contains("C: STARTTLS"), "{}", outcome.transcript);
    assert!(outcome.transcript.contains("C: AUTH "), "{}", outcome.transcript);
    server.delivered(&recipient);
}

#[test]
fn default_profile_used_by_smtp_send_with() {
    config_path();
    let server = postfix();
    let _defaults = DEFAULTS_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());

    assert_eq!(set_option("profile", "submission"), SMTP_OK);
    let recipient = unique_address("profile-default-with");
    let with_default = send_with("", SENDER, &recipient, BODY);
    let reset = set_option("profile", "");
    let after_reset = send_with("", SENDER, &unique_address("profile-reset"), BODY);

    assert_eq!(reset, SMTP_OK);
    assert_eq!(with_default.status, SMTP_OK, "{}", describe(&with_default));
    server.delivered(&recipient);

    // Without the profile no host is set.
    assert_invalid_without_connecting(&after_reset);
    assert!(after_reset.error.contains("host"), "{}", after_reset.error);
}

#[test]
fn set_option_rejects_bad_profile_name() {
    config_path();

    let status = set_option("profile", "a/b");

    assert_eq!(status, SMTP_INVALID_ARGUMENT);
}
