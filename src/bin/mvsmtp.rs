//! `mvsmtp`: send a message from the command line through libmvsmtp.
//!
//! The exit status is the library's status code (0 for sent), the error goes to stderr, and
//! `--transcript` prints the conversation on stdout.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mvsmtp::ffi::{calls, diagnostics, status};
use mvsmtp::request::RawRequest;

#[derive(Parser)]
#[command(name = "mvsmtp", version, about = "Send e-mail over SMTP with libmvsmtp")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send one message, read from standard input or --file, as it goes after DATA:
    /// headers, a blank line, then the text.
    Send(SendArgs),
    /// List the status codes that the exit status can take.
    Statuses,
}

#[derive(clap::Args)]
struct SendArgs {
    /// Mail server host name or IP address.
    #[arg(long)]
    host: String,

    /// Server port; 0 means 25.
    #[arg(long, default_value_t = 25)]
    port: i64,

    /// Name to give in EHLO; defaults to this machine's host name.
    #[arg(long)]
    helo: Option<String>,

    /// Envelope sender; "" sends the null sender <>.
    #[arg(long)]
    from: String,

    /// Recipients, separated by ',' or ';'. Repeat the option for more.
    #[arg(long, required = true)]
    to: Vec<String>,

    /// Seconds to wait for connecting and for each reply (1 to 3600).
    #[arg(long)]
    timeout: Option<String>,

    /// Read the message from this file instead of standard input.
    #[arg(long)]
    file: Option<PathBuf>,

    /// Print the SMTP conversation on standard output (the body appears only as its size).
    #[arg(long)]
    transcript: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            let code = if error.use_stderr() { status::SMTP_INVALID_ARGUMENT } else { status::SMTP_OK };
            return exit_code(code);
        }
    };
    match cli.command {
        Command::Send(args) => exit_code(send(&args)),
        Command::Statuses => {
            for (code, name) in status::STATUS_NAMES {
                println!("{code:>3}  {}", name.to_string_lossy());
            }
            ExitCode::SUCCESS
        }
    }
}

fn send(args: &SendArgs) -> i32 {
    if let Some(timeout) = &args.timeout {
        let code = calls::set_option(Some(b"timeout"), Some(timeout.as_bytes()));
        if code != status::SMTP_OK {
            return report_failure(code, false);
        }
    }

    let body = match read_message(args.file.as_ref()) {
        Ok(body) => body,
        Err(error) => {
            let source = args.file.as_ref().map_or("standard input".to_owned(), |path| path.display().to_string());
            eprintln!("mvsmtp: SMTP_INVALID_ARGUMENT: reading the message from {source} failed: {error}");
            return status::SMTP_INVALID_ARGUMENT;
        }
    };

    let recipients = args.to.join(",");
    let code = calls::send(RawRequest {
        host: Some(args.host.as_bytes()),
        port: args.port,
        helo: args.helo.as_deref().map(str::as_bytes),
        from: Some(args.from.as_bytes()),
        to: Some(recipients.as_bytes()),
        body: Some(&body),
    });

    if args.transcript {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(diagnostics::last_transcript().as_bytes());
        let _ = stdout.flush();
    }
    if code != status::SMTP_OK {
        return report_failure(code, true);
    }
    code
}

fn read_message(file: Option<&PathBuf>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    match file {
        Some(path) => body = std::fs::read(path)?,
        None => {
            io::stdin().lock().read_to_end(&mut body)?;
        }
    }
    Ok(body)
}

fn report_failure(code: i32, with_reply: bool) -> i32 {
    let name = status::status_name(code).to_string_lossy();
    let reply_code = diagnostics::last_reply_code();
    if with_reply && reply_code != 0 {
        eprintln!("mvsmtp: {name} (reply {reply_code}): {}", diagnostics::last_error());
    } else {
        eprintln!("mvsmtp: {name}: {}", diagnostics::last_error());
    }
    code
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
