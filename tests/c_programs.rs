//! Compiles the C example and the C test programs against the built
//! libmvsmtp.so and checks what they print.
//!
//! The library is the one that cargo built for this test executable, in
//! target/<profile>/deps/ or else target/<profile>/.
//! The tests that deliver mail need the Postfix test server on
//! MVSMTP_TEST_HOST:MVSMTP_TEST_PORT (default 127.0.0.1:2525); start it with
//! `tests/postfix/test-server.sh up`.

use std::fs;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Warning flags for every C build and for the C++ build of header_check.c.
const STRICT_FLAGS: &[&str] = &["-Wall", "-Wextra", "-Werror", "-pedantic"];

/// Time limit for one run of a C program before it is killed.
const RUN_LIMIT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------ tests

#[test]
fn header_check_c99() {
    let work = WorkDir::new("header-c99");
    let program = compile_c(&work, "tests/c/header_check.c", "header_check", &[]);

    let run = run_program(&work, &program, &[], None);
    assert!(
        run.status.success(),
        "header_check (C99 build) failed: {}",
        run.describe()
    );
    assert!(
        run.stdout.contains("header_check: ok"),
        "header_check (C99 build) did not print its ok line: {}",
        run.describe()
    );
}

#[test]
fn header_check_cplusplus() {
    let work = WorkDir::new("header-cxx");
    let compiler = find_cplusplus_compiler();
    let output = work.path.join("header_check_cxx");

    let mut command = Command::new(&compiler);
    command
        .arg("-std=c++11")
        .arg("-x")
        .arg("c++")
        .args(STRICT_FLAGS)
        .arg(format!("-I{}", repo_dir().join("include").display()))
        .arg(repo_dir().join("tests/c/header_check.c"))
        .arg("-x")
        .arg("none");
    add_link_flags(&mut command);
    command.arg("-o").arg(&output);
    run_compiler(command, "tests/c/header_check.c as C++");

    let run = run_program(&work, &output, &[], None);
    assert!(
        run.status.success(),
        "header_check (C++ build) failed: {}",
        run.describe()
    );
    assert!(
        run.stdout.contains("header_check: ok"),
        "header_check (C++ build) did not print its ok line: {}",
        run.describe()
    );
}

#[test]
fn example_send_delivers() {
    let server = require_test_server();
    let work = WorkDir::new("example-send");
    let program = compile_c(&work, "examples/send.c", "send", &[]);

    let recipient = unique_recipient("c-example");
    let body = format!(
        "From: C example <c-example-sender@example.test>\r\n\
         To: <{recipient}>\r\n\
         Subject: examples/send.c delivery test\r\n\
         Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\
         Message-ID: <{recipient}>\r\n\
         \r\n\
         Hello from examples/send.c.\r\n\
         Second line of the text.\r\n"
    );
    let expected = body.replace("\r\n", "\n");

    let run = run_program(
        &work,
        &program,
        &[
            &server.host,
            &server.port.to_string(),
            "c-example-sender@example.test",
            &recipient,
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "examples/send.c did not exit with SMTP_OK: {}",
        run.describe()
    );
    assert!(
        run.stdout.contains("status: 0 (SMTP_OK)"),
        "examples/send.c did not print the status line: {}",
        run.describe()
    );
    assert!(
        run.stdout.contains("reply code: 250"),
        "examples/send.c did not print reply code 250: {}",
        run.describe()
    );
    assert!(
        run.stdout.contains("transcript:") && run.stdout.contains("C: MAIL FROM:"),
        "examples/send.c did not print the transcript: {}",
        run.describe()
    );

    let delivered = wait_for_delivery(&recipient);
    assert_eq!(
        strip_postfix_headers(&delivered),
        expected,
        "delivered message differs from the input with LF endings"
    );
}

#[test]
fn e2e_send_dot_lines() {
    let server = require_test_server();
    let work = WorkDir::new("e2e-send");
    let program = compile_e2e_host(&work);

    let recipient = unique_recipient("c-e2e-send");
    let headers = format!(
        "From: <c-e2e-sender@example.test>\r\n\
         To: <{recipient}>\r\n\
         Subject: dot-stuffing and line endings\r\n\
         Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\
         Message-ID: <{recipient}>\r\n\
         \r\n"
    );
    // Lines that need dot-stuffing, then bare LF and bare CR endings, and no
    // final line ending.
    let text = ".\r\n..\r\n. x\r\n.leading dot\r\nbare LF line\n\
                bare CR line\rafter bare CR\r\nlast line without ending";
    let expected_text = ".\n..\n. x\n.leading dot\nbare LF line\n\
                         bare CR line\nafter bare CR\nlast line without ending\n";

    let body_file = work.path.join("body.txt");
    fs::write(&body_file, format!("{headers}{text}")).expect("failed to write the body file");

    let run = run_program(
        &work,
        &program,
        &[
            "send",
            &server.host,
            &server.port.to_string(),
            "c-e2e-sender@example.test",
            &recipient,
            body_file.to_str().expect("temp path is not UTF-8"),
        ],
        None,
    );
    assert!(
        run.status.success(),
        "e2e_host send did not run: {}",
        run.describe()
    );
    assert!(
        run.stdout.contains("status=0 reply=250"),
        "e2e_host send did not get SMTP_OK with reply 250: {}",
        run.describe()
    );

    let delivered = wait_for_delivery(&recipient);
    let expected = format!("{}{expected_text}", headers.replace("\r\n", "\n"));
    assert_eq!(
        strip_postfix_headers(&delivered),
        expected,
        "delivered message differs from the input lines with LF endings"
    );
}

#[test]
fn e2e_sigpipe_survives() {
    run_e2e_check("sigpipe");
}

#[test]
fn e2e_timeout_returns_fast() {
    run_e2e_check("timeout");
}

#[test]
fn e2e_threads_own_errors() {
    run_e2e_check("threads");
}

#[test]
fn exported_symbols_prefixed() {
    let library = library_dir().join("libmvsmtp.so");
    let output = Command::new("nm")
        .arg("-D")
        .arg("--defined-only")
        .arg(&library)
        .output()
        .unwrap_or_else(|error| panic!("failed to run nm (binutils): {error}"));
    assert!(
        output.status.success(),
        "nm -D --defined-only {} failed: {}",
        library.display(),
        String::from_utf8_lossy(&output.stderr)
    );

    let listing = String::from_utf8_lossy(&output.stdout);
    let exported = exported_symbol_names(&listing);
    assert!(
        exported.iter().any(|name| name == "smtp_send"),
        "smtp_send is not among the exported symbols of {}:\n{listing}",
        library.display()
    );

    let offenders: Vec<&String> = exported
        .iter()
        .filter(|name| !name.starts_with("smtp_"))
        .collect();
    assert!(
        offenders.is_empty(),
        "exported symbols without the smtp_ prefix in {}: {offenders:?}",
        library.display()
    );
}

// ------------------------------------------------------- build and run

/// Returns the repository root, where Cargo.toml is.
fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Returns the directory of the libmvsmtp.so that this test run links against.
///
/// The test executable is target/<profile>/deps/c_programs-<hash>. `cargo test`
/// builds the cdylib into that deps/ directory but copies it up to
/// target/<profile>/ only on `cargo build`, so the copy in deps/ is preferred
/// because it is never older than the sources under test.
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
        "libmvsmtp.so not found in {} or {}; build the library with the same \
         profile (for example `cargo build --release`) and run the test again",
        deps_dir.display(),
        profile_dir.display()
    );
}

/// Temporary directory for one test's binaries and files, removed on drop.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn new(test_name: &str) -> WorkDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "mvsmtp-c-programs-{}-{}-{}-{test_name}",
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

fn add_link_flags(command: &mut Command) {
    let library_dir = library_dir();
    command
        .arg(format!("-L{}", library_dir.display()))
        .arg("-lmvsmtp")
        .arg(format!("-Wl,-rpath,{}", library_dir.display()));
}

/// Compiles one C file of the repository as C99 with the strict flags and
/// links it against libmvsmtp. Returns the path of the program.
fn compile_c(work: &WorkDir, source: &str, program_name: &str, extra_flags: &[&str]) -> PathBuf {
    let output = work.path.join(program_name);

    let mut command = Command::new("cc");
    command
        .arg("-std=c99")
        .args(STRICT_FLAGS)
        .args(extra_flags)
        .arg(format!("-I{}", repo_dir().join("include").display()))
        .arg(repo_dir().join(source));
    add_link_flags(&mut command);
    command.arg("-o").arg(&output);

    run_compiler(command, source);
    output
}

fn compile_e2e_host(work: &WorkDir) -> PathBuf {
    compile_c(work, "tests/c/e2e_host.c", "e2e_host", &["-pthread"])
}

fn run_compiler(mut command: Command, source_description: &str) {
    let output = command.output().unwrap_or_else(|error| {
        panic!("failed to start the compiler for {source_description}: {error}")
    });
    assert!(
        output.status.success(),
        "compiling {source_description} failed ({}):\n{:?}\n{}{}",
        output.status,
        command,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns `c++`, or `g++` where `c++` is missing.
fn find_cplusplus_compiler() -> String {
    for candidate in ["c++", "g++"] {
        let found = Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|status| status.success())
            .unwrap_or(false);
        if found {
            return candidate.to_string();
        }
    }
    panic!("no C++ compiler found: install g++ (neither c++ nor g++ runs)");
}

/// Exit status and output of one run of a C program.
struct ProgramRun {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl ProgramRun {
    fn describe(&self) -> String {
        let ending = match (self.status.code(), self.status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "unknown exit status".to_string(),
        };
        format!(
            "{ending}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Runs a program with its output going to files in the work directory,
/// and kills it if it runs longer than RUN_LIMIT.
fn run_program(work: &WorkDir, program: &Path, args: &[&str], stdin: Option<&[u8]>) -> ProgramRun {
    let stdout_path = work.path.join("stdout.txt");
    let stderr_path = work.path.join("stderr.txt");
    let stdin_path = work.path.join("stdin.txt");
    fs::write(&stdin_path, stdin.unwrap_or(b"")).expect("failed to write the stdin file");

    let open = |path: &Path| {
        fs::File::create(path)
            .unwrap_or_else(|error| panic!("failed to create {}: {error}", path.display()))
    };
    let mut child = Command::new(program)
        .args(args)
        .current_dir(&work.path)
        .stdin(fs::File::open(&stdin_path).expect("failed to open the stdin file"))
        .stdout(open(&stdout_path))
        .stderr(open(&stderr_path))
        .spawn()
        .unwrap_or_else(|error| panic!("failed to start {}: {error}", program.display()));

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("failed to wait for the program") {
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
        status,
        stdout: String::from_utf8_lossy(&fs::read(&stdout_path).unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&stderr_path).unwrap_or_default()).into_owned(),
    }
}

/// Runs one self-checking e2e_host subcommand and expects its "NAME: ok" line.
fn run_e2e_check(subcommand: &str) {
    let work = WorkDir::new(subcommand);
    let program = compile_e2e_host(&work);

    let run = run_program(&work, &program, &[subcommand], None);
    assert_eq!(
        run.status.signal(),
        None,
        "e2e_host {subcommand} was killed by a signal (13 is SIGPIPE): {}",
        run.describe()
    );
    assert!(
        run.status.success(),
        "e2e_host {subcommand} reported failures: {}",
        run.describe()
    );
    assert!(
        run.stdout.contains(&format!("{subcommand}: ok")),
        "e2e_host {subcommand} did not print its ok line: {}",
        run.describe()
    );
}

/// Returns the names of the global text and data symbols in `nm -D` output.
fn exported_symbol_names(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_address, kind, name] if ["T", "D", "B", "R"].contains(kind) => {
                    Some(name.split('@').next().unwrap_or(name).to_string())
                }
                _ => None,
            }
        })
        .collect()
}

// ------------------------------------------- test server and maildir helpers

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

/// Returns a recipient address that no other test run uses.
fn unique_recipient(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}@example.test",
        std::process::id(),
        unix_nanos()
    )
}

fn maildir_root() -> PathBuf {
    std::env::var_os("MVSMTP_TEST_MAILDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/mvsmtp-postfix/maildir"))
}

/// Polls the maildir for up to 15 seconds for the message whose X-Original-To
/// header is `recipient`, and returns its contents.
fn wait_for_delivery(recipient: &str) -> String {
    let root = maildir_root();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut read_errors = Vec::new();

    loop {
        for subdir in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(root.join(subdir)) else {
                continue;
            };
            for entry in entries.flatten() {
                match fs::read(entry.path()) {
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        if is_addressed_to(&text, recipient) {
                            return text;
                        }
                    }
                    Err(error) => read_errors.push(format!("{}: {error}", entry.path().display())),
                }
            }
        }

        if Instant::now() > deadline {
            read_errors.dedup();
            panic!(
                "no message for {recipient} arrived in {} (new/ or cur/) within 15 s \
                 (files that could not be read: {read_errors:?})",
                root.display()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Returns true if the header section has the line `X-Original-To: recipient`.
fn is_addressed_to(message: &str, recipient: &str) -> bool {
    message
        .lines()
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.strip_prefix("X-Original-To:"))
        .any(|value| value.trim() == recipient)
}

/// Removes the header lines that Postfix puts above the client's bytes
/// (Return-Path, X-Original-To, Delivered-To, Received) together with their
/// continuation lines, which start with a space or tab.
fn strip_postfix_headers(message: &str) -> String {
    const ADDED_BY_POSTFIX: [&str; 4] = [
        "return-path:",
        "x-original-to:",
        "delivered-to:",
        "received:",
    ];

    let mut rest = message;
    let mut in_added_header = false;
    while let Some(line_end) = rest.find('\n') {
        let line = &rest[..line_end];
        let lowercase = line.to_ascii_lowercase();
        let is_continuation = line.starts_with(' ') || line.starts_with('\t');

        if ADDED_BY_POSTFIX
            .iter()
            .any(|name| lowercase.starts_with(name))
        {
            in_added_header = true;
        } else if !(in_added_header && is_continuation) {
            break;
        }
        rest = &rest[line_end + 1..];
    }
    rest.to_string()
}
