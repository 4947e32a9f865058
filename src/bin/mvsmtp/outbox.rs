//! `mvsmtp outbox DIR`: sends every message file waiting in a directory over one SMTP
//! session, and moves each file once the server has replied to it.
//!
//! Only one message's data is in flight at a time, and a file is moved only after the
//! server's reply to it. The next message's envelope goes out with the end of data to save
//! a wait, but an envelope without data delivers nothing. So a crash or a kill at any point
//! loses no message, and sends again at most the one in flight. That one cannot be helped: RFC 1047 describes the gap between the end
//! of the data and the server's reply, in which a broken connection leaves the client
//! unsure whether the server took the message.

use std::ffi::{OsStr, OsString};
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use mvsmtp::error::{Error, Refusal, Step};
use mvsmtp::ffi::calls::{finish_delivery, merged_options};
use mvsmtp::ffi::{diagnostics, status};
use mvsmtp::options::Options;
use mvsmtp::request::{RawRequest, Request};
use mvsmtp::session::{self, Delivery, Persistent};
use mvsmtp::transcript::Transcript;

use crate::report::write_stdout;
use crate::sendmail::{self, Envelope, EnvelopeRules};
use crate::settings::{borrow_entries, ServerArgs};

mod spool;
mod tally;

use spool::{Destination, OpenError, Spool};
use tally::{format_reason, Disposition, FileReport, Tally};

/// Exit status when some messages, or some recipients of a message, were rejected
/// (EX_DATAERR of sysexits.h).
pub const EXIT_REJECTED: u8 = 65;

/// Exit status when reading or writing the outbox directory failed (EX_IOERR).
pub const EXIT_DIRECTORY_ERROR: u8 = 74;

/// Exit status when messages are left for a later run, or another run holds the lock
/// (EX_TEMPFAIL).
pub const EXIT_RETRY: u8 = 75;

/// Exit status when the run stopped on a TLS or authentication failure that the next run
/// would meet again, such as a rejected password or an untrusted certificate (EX_CONFIG).
pub const EXIT_CONFIGURATION_ERROR: u8 = 78;

/// Exit status for invalid arguments or options, as in every other mode.
pub const EXIT_INVALID_ARGUMENT: u8 = status::SMTP_INVALID_ARGUMENT as u8;

/// Messages in a row that may fail with a timeout, a lost connection or an invalid reply
/// before the run stops. Each such failure costs up to a timeout and a reconnect, so a
/// server that accepts connections but no messages would otherwise hold the run for every
/// file in turn.
const MAX_CONSECUTIVE_CONNECTION_FAILURES: usize = 3;

pub const AFTER_HELP: &str = "\
Messages:
  Every regular file directly in DIR is a ready-made message (headers, a blank line, the
  text), sent in the order of the file names. Files whose names start with \".\" or end in
  \".tmp\" are left alone, and so are subdirectories and symbolic links. A program that
  writes a message must write it as NAME.tmp and rename it to NAME when it is complete, so
  that no run sends half a message. Files added during a run wait for the next one.

Envelope, as with mvsmtp sendmail -t:
  The recipients are the addresses of the To, Cc and Bcc headers, and the Bcc header is
  removed before sending. The sender is --from, else the address of the From header, or of
  the Sender header when From does not contain exactly one address. A message without a
  Date or Message-ID header gets one.

After the server's reply to each message, the file is:
  - moved to DIR/sent/ when the server accepted it for every recipient;
  - moved to DIR/sent/ with NAME.reason, which lists the rejected recipients, when the
    server accepted it for some of them (sending it again would duplicate it);
  - moved to DIR/failed/ with NAME.reason when the server rejected it permanently (5xx),
    or when its headers give no valid envelope;
  - left in DIR for the next run after a temporary failure (4xx, a timeout, a lost
    connection). No limit stops the retries: to give up on a message, move it out of DIR.
  When no connection can be made (the server cannot be reached, or rejects the greeting,
  TLS or the login), or 3 messages in a row fail with a timeout, a lost connection or an
  invalid reply, the run stops and leaves the rest in DIR. NAME.reason holds the status
  name, the server's reply and the error. A name already taken in sent/ or failed/ is kept, and
  the new file becomes NAME.1, NAME.2 and so on.

Safety:
  A run locks DIR (the file DIR/.mvsmtp-outbox.lock), so two runs never send the same file.
  A second run exits at once with status 75. A run that is killed sends again, on the next
  run, at most the one message that was in flight.

Exit status (when several apply, the first in this list):
   2  Invalid arguments or options, or DIR is not a directory. Nothing was sent.
  74  Reading a message failed (the run goes on without it), moving one failed (the run
      stops), or the lock file, sent/ or failed/ could not be created.
  78  The run stopped on a TLS or authentication failure (a rejected password, an untrusted
      certificate) that every later run would meet too. Fix the settings; the messages
      stay in DIR.
  75  Some messages are left in DIR for a later run, or another run holds the lock.
      Only sent/ and failed/ get NAME.reason files, so keep --json or set
      -o log_file=PATH to record why a message stayed.
  65  Some messages were moved to failed/, or some recipients were rejected.
   0  Every message was sent to every recipient, or DIR held none.
";

#[derive(clap::Args)]
pub struct OutboxArgs {
    #[command(flatten)]
    server: ServerArgs,

    /// The outbox directory: each regular file in it is one message.
    #[arg(value_name = "DIR")]
    dir: PathBuf,

    /// Envelope sender for every message, in place of its From or Sender header; "" sends
    /// the null sender <>.
    #[arg(long)]
    from: Option<OsString>,

    /// Print one JSON object on standard output at the end: status (the exit status),
    /// error, the counts sent, partial, failed and left, elapsed_seconds, and files, with
    /// each message that was not sent to every recipient.
    #[arg(long)]
    json: bool,

    /// Print the SMTP conversation on standard output: the session's opening, then each
    /// message's, after a line "== NAME". With --json, each entry of files gets its
    /// transcript instead.
    #[arg(long)]
    transcript: bool,
}

/// Runs the mode and returns the exit status.
pub fn run(args: &OutboxArgs) -> u8 {
    let mut tally = Tally::new(args.json, Instant::now());

    let options = match server_options(&args.server) {
        Ok(options) => options,
        Err(message) => return tally.finish_early(EXIT_INVALID_ARGUMENT, &message),
    };
    // The server settings are checked before anything touches the directory or the network.
    let open_request = match Request::with_envelope(None, Vec::new(), b"", &options) {
        Ok(request) => request,
        Err(error) => return tally.finish_early(EXIT_INVALID_ARGUMENT, &error.to_string()),
    };

    let spool = match Spool::open(&args.dir) {
        Ok(spool) => spool,
        Err(error) => {
            let (code, message) = describe_open_error(error);
            return tally.finish_early(code, &message);
        }
    };
    let names = match spool.pending() {
        Ok(names) => names,
        Err(error) => {
            let message = format!("Listing the files in {} failed: {error}. Check that you may read the directory.", spool.dir().display());
            return tally.finish_early(EXIT_DIRECTORY_ERROR, &message);
        }
    };
    if names.is_empty() {
        return tally.finish();
    }

    let mut transcript = Transcript::new();
    let mut persistent = match session::open(&open_request, &mut transcript) {
        Ok(persistent) => persistent,
        Err(error) => {
            tally.left += names.len();
            let reply_code = error.reply().map_or(0, |reply| i32::from(reply.code));
            tally.configuration_error = tally::is_configuration_failure(Some(status::status_of(&error)), reply_code);
            let files = if names.len() == 1 { "the file stays".to_owned() } else { format!("all {} files stay", names.len()) };
            tally.fail(format!(
                "{}: {error} Nothing was sent; {files} in {} for the next run.",
                status::status_name(status::status_of(&error)).to_string_lossy(),
                spool.dir().display()
            ));
            return tally.finish();
        }
    };

    let bar = progress_bar(names.len());
    let rules = EnvelopeRules { recipients_from_headers: true, sender: args.from.clone(), sender_option: "--from", ..EnvelopeRules::default() };
    let mut sender = Sender {
        spool: &spool,
        options: &options,
        template: &open_request,
        rules,
        persistent: &mut persistent,
        consecutive_connection_failures: 0,
        keep_transcripts: args.transcript,
    };
    if args.transcript && !args.json {
        write_stdout(&format!("== opening the session\n{}", transcript.as_str()));
    }

    // Each file is read before the one ahead of it is sent, so that its envelope can go out
    // with that message's end of data.
    let mut upcoming = names.get(1).map(|name| sender.load(name));
    let mut current = names.first().map(|name| sender.load(name));
    for (index, name) in names.iter().enumerate() {
        bar.set_message(name.to_string_lossy().into_owned());
        let loaded = current.take().unwrap_or(Loaded::Missing);
        let report = sender.send_file(name, loaded, upcoming.as_ref());
        current = upcoming.take();
        upcoming = names.get(index + 2).map(|name| sender.load(name));
        bar.inc(1);
        let Some(report) = report else { continue };
        if let (Some(text), false) = (&report.transcript, args.json) {
            bar.suspend(|| write_stdout(&format!("== {}\n{text}", name.to_string_lossy())));
        }

        let ends_run = matches!(report.disposition, Disposition::Stop | Disposition::DirectoryError);
        tally.record(report, &bar);
        if ends_run {
            // The files after the one that stopped the run stay too.
            tally.left += names.len() - index - 1;
            break;
        }
    }
    bar.finish_and_clear();

    persistent.close(&mut transcript);
    tally.finish()
}

/// Builds the library options from the server arguments: defaults, profile, then the
/// arguments themselves.
fn server_options(server: &ServerArgs) -> Result<Options, String> {
    let entries = server.entries(false)?;
    let borrowed = borrow_entries(&entries);
    merged_options(&borrowed, |options| {
        for (name, value) in &borrowed {
            options.set(name, value)?;
        }
        Ok(())
    })
    .map_err(|error| error.to_string())
}

fn describe_open_error(error: OpenError) -> (u8, String) {
    match error {
        OpenError::NotADirectory(path, Some(cause)) => {
            (EXIT_INVALID_ARGUMENT, format!("The outbox directory {} cannot be used: {cause}. Check the path.", path.display()))
        }
        OpenError::NotADirectory(path, None) => (EXIT_INVALID_ARGUMENT, format!("{} is not a directory. Pass the outbox directory.", path.display())),
        OpenError::Locked(lock) => (
            EXIT_RETRY,
            format!("Another mvsmtp outbox run holds the lock {}, so this run sent nothing. Run again when that one has ended.", lock.display()),
        ),
        OpenError::Io(message) => (EXIT_DIRECTORY_ERROR, message),
    }
}

fn progress_bar(length: usize) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed}, {eta} left] {wide_msg}") {
        bar.set_style(style);
    }
    bar
}

/// A message file read from the outbox, or what kept it from being read.
enum Loaded {
    Message(Envelope),
    /// Its headers give no valid envelope.
    Invalid(String),
    /// It could not be read.
    Unreadable(String),
    /// It disappeared after the directory was listed.
    Missing,
}

/// Sends the files of one run over its session.
struct Sender<'a> {
    spool: &'a Spool,
    options: &'a Options,
    /// The request that opened the session, whose server and TLS settings every message uses.
    template: &'a Request<'static>,
    rules: EnvelopeRules,
    persistent: &'a mut Persistent,
    consecutive_connection_failures: usize,
    /// Whether each message's transcript goes into its report (--transcript).
    keep_transcripts: bool,
}

impl Sender<'_> {
    /// Reads a message file and works out its envelope from its headers.
    fn load(&self, name: &OsStr) -> Loaded {
        let path = self.spool.dir().join(name);
        let message = match std::fs::read(&path) {
            Ok(message) => message,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Loaded::Missing,
            Err(error) => {
                return Loaded::Unreadable(format!("Reading {} failed: {error}. Check the file's permissions; it stays in the outbox.", path.display()));
            }
        };
        match sendmail::envelope(&self.rules, &message) {
            Ok(envelope) => Loaded::Message(envelope),
            Err(problem) => Loaded::Invalid(problem),
        }
    }

    /// Builds the request of a loaded message.
    fn request<'e>(&self, envelope: &'e Envelope) -> Result<Request<'e>, Error> {
        let raw = RawRequest { from: Some(&envelope.sender), to: Some(&envelope.recipients), body: Some(&envelope.message) };
        Request::validate_for_session(raw, self.options, self.template)
    }

    /// Sends one file and moves it as its outcome requires. `next` is the file that comes
    /// after it, whose envelope may go out with this message's end of data. Returns `None`
    /// when the file disappeared after the directory was listed.
    fn send_file(&mut self, name: &OsStr, loaded: Loaded, next: Option<&Loaded>) -> Option<FileReport> {
        let envelope = match loaded {
            Loaded::Message(envelope) => envelope,
            Loaded::Missing => return None,
            Loaded::Unreadable(text) => return Some(FileReport::local(name, Disposition::Unreadable, None, text)),
            // A file whose headers give no valid envelope is rejected without asking the server.
            Loaded::Invalid(problem) => {
                let report = FileReport::local(name, Disposition::Rejected, Some(status::SMTP_INVALID_ARGUMENT), problem);
                return Some(self.move_file(report, None, &[]));
            }
        };
        let request = match self.request(&envelope) {
            Ok(request) => request,
            Err(error) => {
                let report = FileReport::local(name, Disposition::Rejected, Some(status::status_of(&error)), error.to_string());
                return Some(self.move_file(report, None, &[]));
            }
        };
        let next_request = match next {
            Some(Loaded::Message(next)) => self.request(next).ok(),
            _ => None,
        };

        let mut transcript = Transcript::new();
        let outcome = self.persistent.send_before(&request, next_request.as_ref(), &mut transcript);
        // The same bookkeeping as smtp_session_send: the audit line, the status and the
        // error line.
        let code = finish_delivery(&request, self.options, &outcome, transcript);
        let mut report = FileReport {
            name: name.to_os_string(),
            disposition: classify(&outcome),
            status: Some(code),
            reply_code: diagnostics::last_reply_code(),
            error: diagnostics::last_error(),
            moved_to: None,
            transcript: self.keep_transcripts.then(diagnostics::last_transcript),
        };
        self.count_connection_failures(&outcome, &mut report);

        let (reply, refused) = match &outcome {
            Ok(delivery) => (Some(delivery.reply.one_line()), delivery.refused.as_slice()),
            Err(Error::RecipientsRejected(refusals)) => (refusals.first().map(|refusal| refusal.reply.one_line()), refusals.as_slice()),
            Err(error) => (error.reply().map(|reply| reply.one_line()), &[][..]),
        };
        Some(self.move_file(report, reply.as_deref(), refused))
    }

    /// Stops the run when too many messages in a row failed with a timeout, a lost
    /// connection or an invalid reply.
    fn count_connection_failures(&mut self, outcome: &Result<Delivery, Error>, report: &mut FileReport) {
        if !outcome.as_ref().is_err_and(is_connection_failure) {
            self.consecutive_connection_failures = 0;
            return;
        }
        self.consecutive_connection_failures += 1;
        if self.consecutive_connection_failures >= MAX_CONSECUTIVE_CONNECTION_FAILURES && report.disposition == Disposition::Retry {
            report.disposition = Disposition::Stop;
            report.error.push_str(&format!(" {MAX_CONSECUTIVE_CONNECTION_FAILURES} messages in a row failed with a timeout, a lost connection or an invalid reply."));
        }
    }

    /// Moves a file that its disposition sends to sent/ or failed/, with its `.reason` file,
    /// and records where it went. A failed move turns the report into a directory error,
    /// which stops the run.
    fn move_file(&self, mut report: FileReport, reply: Option<&str>, refused: &[Refusal]) -> FileReport {
        let destination = match report.disposition {
            Disposition::Sent | Disposition::Partial => Destination::Sent,
            Disposition::Rejected => Destination::Failed,
            Disposition::Retry | Disposition::Stop | Disposition::Unreadable | Disposition::DirectoryError => return report,
        };
        let reason = (report.disposition != Disposition::Sent).then(|| format_reason(report.status, reply, &report.error, refused));

        match self.spool.move_message(&report.name, destination, reason.as_deref()) {
            Ok(moved_name) => {
                let mut moved_to = PathBuf::from(destination.dir_name());
                moved_to.push(moved_name);
                report.moved_to = Some(moved_to);
            }
            Err(error) => {
                let consequence = if destination == Destination::Sent {
                    "The server accepted the message, so move it there by hand, or the next run sends it again."
                } else {
                    "The message was not sent; move it out of the outbox by hand, or the next run tries it again."
                };
                report.error = format!("Moving it to {}/ failed: {error}. {consequence}", destination.dir_name());
                report.disposition = Disposition::DirectoryError;
                report.status = None;
            }
        }
        report
    }
}

/// Decides what becomes of a file after the server's reply, or after the failure that
/// prevented one.
fn classify(outcome: &Result<Delivery, Error>) -> Disposition {
    let error = match outcome {
        Ok(delivery) if delivery.refused.is_empty() => return Disposition::Sent,
        Ok(_) => return Disposition::Partial,
        Err(error) => error,
    };
    let by_reply = |reply: &mvsmtp::reply::Reply| if reply.is_permanent() { Disposition::Rejected } else { Disposition::Retry };
    match error {
        Error::InvalidArgument(_) | Error::MessageTooLarge { .. } => Disposition::Rejected,
        // Nothing was delivered, so a recipient rejected for now may accept the message later.
        Error::RecipientsRejected(refusals) => {
            if refusals.iter().all(|refusal| refusal.reply.is_permanent()) {
                Disposition::Rejected
            } else {
                Disposition::Retry
            }
        }
        Error::SenderRejected { reply, .. } | Error::DataRejected { reply } | Error::MessageRejected { reply } | Error::BodyRejected { reply } => by_reply(reply),
        Error::Timeout { step, .. } | Error::ConnectionLost { step, .. } | Error::Protocol { step, .. } | Error::ServiceClosing { step, .. } => {
            if is_connection_step(*step) {
                Disposition::Stop
            } else {
                Disposition::Retry
            }
        }
        Error::ResolveFailed { .. }
        | Error::ConnectFailed { .. }
        | Error::GreetingRejected { .. }
        | Error::HelloRejected { .. }
        | Error::TlsFailed { .. }
        | Error::TlsUnavailable { .. }
        | Error::AuthFailed { .. }
        | Error::AuthUnavailable { .. }
        | Error::Internal(_) => Disposition::Stop,
    }
}

/// Reports whether a step belongs to establishing the connection, which the session repeats
/// when it reconnects, rather than to one message.
fn is_connection_step(step: Step) -> bool {
    matches!(step, Step::Resolve | Step::Connect | Step::Greeting | Step::Ehlo | Step::Helo | Step::StartTls | Step::TlsHandshake | Step::Auth)
}

/// Reports whether an error broke the connection: the server is then unlikely to take the
/// next message either.
fn is_connection_failure(error: &Error) -> bool {
    matches!(error, Error::Timeout { .. } | Error::ConnectionLost { .. } | Error::Protocol { .. } | Error::ServiceClosing { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mvsmtp::reply::Reply;

    fn reply(code: u16) -> Reply {
        Reply { code, enhanced: None, lines: vec!["text".into()] }
    }

    fn refusal(code: u16) -> Refusal {
        let recipient = mvsmtp::address::parse_recipients(b"r@example.test").unwrap().remove(0);
        Refusal { recipient, reply: reply(code) }
    }

    fn delivery(refused: Vec<Refusal>) -> Delivery {
        Delivery { accepted: Vec::new(), refused, reply: reply(250), host: "127.0.0.1".into() }
    }

    #[test]
    fn accepted_messages_sent() {
        assert_eq!(classify(&Ok(delivery(Vec::new()))), Disposition::Sent);
        assert_eq!(classify(&Ok(delivery(vec![refusal(550)]))), Disposition::Partial);
        assert_eq!(classify(&Ok(delivery(vec![refusal(450)]))), Disposition::Partial);
    }

    #[test]
    fn permanent_replies_rejected() {
        let cases = [
            Error::SenderRejected { sender: None, reply: reply(553) },
            Error::DataRejected { reply: reply(554) },
            Error::MessageRejected { reply: reply(550) },
            Error::BodyRejected { reply: reply(552) },
            Error::RecipientsRejected(vec![refusal(550), refusal(551)]),
            Error::MessageTooLarge { size: 10, limit: 5 },
            Error::InvalidArgument("bad address".into()),
        ];
        for error in cases {
            assert_eq!(classify(&Err(error.clone())), Disposition::Rejected, "{error:?}");
        }
    }

    #[test]
    fn temporary_failures_retried() {
        let cases = [
            Error::SenderRejected { sender: None, reply: reply(451) },
            Error::MessageRejected { reply: reply(452) },
            Error::RecipientsRejected(vec![refusal(550), refusal(450)]),
            Error::Timeout { step: Step::EndOfData, seconds: 30 },
            Error::ConnectionLost { step: Step::Body, detail: "reset".into() },
            Error::ServiceClosing { step: Step::MailFrom, reply: reply(421) },
            Error::Protocol { step: Step::Data, detail: "garbage".into() },
        ];
        for error in cases {
            assert_eq!(classify(&Err(error.clone())), Disposition::Retry, "{error:?}");
        }
    }

    #[test]
    fn connection_failures_stop() {
        let cases = [
            Error::ConnectFailed { host: "127.0.0.1".into(), port: 25, detail: "refused".into() },
            Error::Timeout { step: Step::Greeting, seconds: 30 },
            Error::ConnectionLost { step: Step::Ehlo, detail: "reset".into() },
            Error::ServiceClosing { step: Step::Greeting, reply: reply(421) },
            Error::GreetingRejected { reply: reply(554) },
            Error::Internal("bug".into()),
        ];
        for error in cases {
            assert_eq!(classify(&Err(error.clone())), Disposition::Stop, "{error:?}");
        }
    }

    #[test]
    fn help_states_failure_limit() {
        let sentence = format!("or {MAX_CONSECUTIVE_CONNECTION_FAILURES} messages in a row fail");
        assert!(AFTER_HELP.contains(&sentence), "{AFTER_HELP}");
    }
}
