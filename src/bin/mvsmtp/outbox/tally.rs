//! The results of one outbox run: a line on standard error for each message that was not
//! sent to every recipient, the summary line, the exit status and the JSON object.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{HumanCount, ProgressBar};

use mvsmtp::error::Refusal;
use mvsmtp::ffi::status;

use super::{EXIT_CONFIGURATION_ERROR, EXIT_DIRECTORY_ERROR, EXIT_REJECTED, EXIT_RETRY};
use crate::report::{json_string, write_stdout};

/// The outcome of one message file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Accepted for every recipient, and moved to sent/.
    Sent,
    /// Accepted for some recipients, and moved to sent/ with a `.reason` file.
    Partial,
    /// Rejected permanently, or without a valid envelope, and moved to failed/.
    Rejected,
    /// Failed for now; the file stays for the next run.
    Retry,
    /// The connection could not be established or kept; this file and the rest stay, and
    /// the run stops.
    Stop,
    /// Reading the file failed; it stays, and the run goes on.
    Unreadable,
    /// Moving the file failed; the run stops, because the next move would fail too.
    DirectoryError,
}

/// The result of one message file.
#[derive(Debug)]
pub struct FileReport {
    pub name: OsString,
    pub disposition: Disposition,
    /// The library's status code, or `None` for a failure of the directory.
    pub status: Option<i32>,
    pub reply_code: i32,
    pub error: String,
    /// The new path of the file, relative to the outbox, such as `failed/0001.eml`.
    pub moved_to: Option<PathBuf>,
    /// The SMTP conversation of the message, kept with --transcript.
    pub transcript: Option<String>,
}

impl FileReport {
    /// Describes a problem that the tool found without asking the server.
    pub fn local(name: &std::ffi::OsStr, disposition: Disposition, status: Option<i32>, error: String) -> FileReport {
        FileReport { name: name.to_os_string(), disposition, status, reply_code: 0, error, moved_to: None, transcript: None }
    }

    fn status_name(&self) -> Option<String> {
        self.status.map(|code| status::status_name(code).to_string_lossy().into_owned())
    }

    /// Formats the line printed on standard error.
    fn line(&self) -> String {
        let mut line = format!("mvsmtp: {}: ", self.name.to_string_lossy());
        if let Some(name) = self.status_name() {
            line.push_str(&name);
            if self.reply_code != 0 {
                line.push_str(&format!(" (reply {})", self.reply_code));
            }
            line.push_str(": ");
        }
        line.push_str(&self.error);
        let moved_to = self.moved_to.as_ref().map(|path| path.display().to_string()).unwrap_or_default();
        match self.disposition {
            Disposition::Sent | Disposition::Unreadable | Disposition::DirectoryError => {}
            Disposition::Partial => line.push_str(&format!(" Moved to {moved_to}; {moved_to}.reason lists the rejected recipients.")),
            Disposition::Rejected => line.push_str(&format!(" Moved to {moved_to}.")),
            Disposition::Retry => line.push_str(" Left in the outbox for the next run."),
            Disposition::Stop => line.push_str(" The run stopped; this file and the rest stay in the outbox for the next run."),
        }
        line
    }

    fn json(&self) -> String {
        let result = match self.disposition {
            Disposition::Sent => "sent",
            Disposition::Partial => "partial",
            Disposition::Rejected => "failed",
            Disposition::Retry | Disposition::Stop => "left",
            Disposition::Unreadable | Disposition::DirectoryError => "error",
        };
        let optional = |value: Option<String>| value.map_or("null".to_owned(), |text| json_string(&text));
        let transcript = self.transcript.as_ref().map(|text| format!(",\"transcript\":{}", json_string(text))).unwrap_or_default();
        format!(
            "{{\"name\":{},\"result\":\"{result}\",\"moved_to\":{},\"status\":{},\"status_name\":{},\"reply_code\":{},\"error\":{}{transcript}}}",
            json_string(&self.name.to_string_lossy()),
            optional(self.moved_to.as_ref().map(|path| path.display().to_string())),
            self.status.map_or("null".to_owned(), |code| code.to_string()),
            optional(self.status_name()),
            self.reply_code,
            json_string(&self.error)
        )
    }
}

/// Formats the `.reason` file of a moved message: the status name, the server's reply and
/// the error, then one line for each rejected recipient.
pub fn format_reason(status: Option<i32>, reply: Option<&str>, error: &str, refused: &[Refusal]) -> String {
    let name = status.map(|code| status::status_name(code).to_string_lossy().into_owned()).unwrap_or_default();
    let mut text = format!("status: {name}\nreply: {}\nerror: {error}\n", reply.unwrap_or(""));
    for refusal in refused {
        text.push_str(&format!("rejected: {refusal}\n"));
    }
    text
}

/// Reports whether a failure comes from the settings rather than from the moment: TLS or
/// authentication failed with a permanent reply, or with none. Such a run stops, and the
/// next one fails the same way until the settings change.
pub fn is_configuration_failure(status: Option<i32>, reply_code: i32) -> bool {
    let permanent = reply_code == 0 || reply_code >= 500;
    permanent
        && matches!(
            status,
            Some(status::SMTP_TLS_FAILED | status::SMTP_TLS_UNAVAILABLE | status::SMTP_AUTH_FAILED | status::SMTP_AUTH_UNAVAILABLE)
        )
}

/// The counts and messages of one run.
pub struct Tally {
    json: bool,
    started: Instant,
    /// Messages accepted for at least one recipient, the partial ones included.
    pub sent: usize,
    pub partial: usize,
    pub failed: usize,
    pub left: usize,
    /// The error that ended the run early, if one did.
    error: Option<String>,
    /// The run stopped on a permanent TLS or authentication failure, which a later run will
    /// meet again until the settings change.
    pub configuration_error: bool,
    /// The exit status of a run that ended before it could send.
    early_exit: Option<u8>,
    directory_error: bool,
    /// Every file that was not sent to every recipient.
    files: Vec<FileReport>,
}

impl Tally {
    pub fn new(json: bool, started: Instant) -> Tally {
        Tally {
            json,
            started,
            sent: 0,
            partial: 0,
            failed: 0,
            left: 0,
            error: None,
            configuration_error: false,
            early_exit: None,
            directory_error: false,
            files: Vec::new(),
        }
    }

    /// Counts one file and prints its line, above the progress bar, unless it was sent.
    pub fn record(&mut self, report: FileReport, bar: &ProgressBar) {
        match report.disposition {
            Disposition::Sent => {
                self.sent += 1;
                return;
            }
            Disposition::Partial => {
                self.sent += 1;
                self.partial += 1;
            }
            Disposition::Rejected => self.failed += 1,
            Disposition::Retry | Disposition::Stop => self.left += 1,
            Disposition::Unreadable | Disposition::DirectoryError => {
                self.left += 1;
                self.directory_error = true;
            }
        }
        let line = report.line();
        if report.disposition == Disposition::Stop && is_configuration_failure(report.status, report.reply_code) {
            self.configuration_error = true;
        }
        if matches!(report.disposition, Disposition::Stop | Disposition::DirectoryError) {
            self.error = Some(line.trim_start_matches("mvsmtp: ").to_owned());
        }
        if !self.json {
            bar.suspend(|| eprintln!("{line}"));
        }
        self.files.push(report);
    }

    /// Records the error that ended the run before any message was sent, such as a failed
    /// connection. Without --json it goes to standard error at once.
    pub fn fail(&mut self, message: String) {
        if !self.json {
            eprintln!("mvsmtp: {message}");
        }
        self.error = Some(message);
    }

    /// Ends a run that could not start, with `code` as its exit status. The message goes to
    /// standard error even with --json, as the other modes' argument errors do.
    pub fn finish_early(&mut self, code: u8, message: &str) -> u8 {
        eprintln!("mvsmtp: {message}");
        self.error = Some(message.to_owned());
        self.early_exit = Some(code);
        self.finish()
    }

    /// Prints the summary line on standard error, and with --json the object on standard
    /// output, and returns the exit status.
    pub fn finish(&mut self) -> u8 {
        let code = self.exit_status();
        let seconds = self.started.elapsed().as_secs_f64();
        if self.early_exit.is_some() {
            // The directory was never read, so there is nothing to count.
            eprintln!("mvsmtp outbox: nothing sent; the files in the outbox, if any, were not touched.");
        } else {
            // HumanCount writes thousands separators: "1,998 sent".
            let count = |value: usize| HumanCount(value as u64);
            let partial = if self.partial > 0 { format!(" ({} partly rejected)", count(self.partial)) } else { String::new() };
            eprintln!(
                "mvsmtp outbox: {} sent{partial}, {} failed, {} left for retry, in {seconds:.1} s.",
                count(self.sent),
                count(self.failed),
                count(self.left)
            );
        }

        if self.json {
            let files = self.files.iter().map(FileReport::json).collect::<Vec<_>>().join(",");
            // A run that never read the directory has no counts: null, not 0.
            let count = |value: usize| if self.early_exit.is_some() { "null".to_owned() } else { value.to_string() };
            write_stdout(&format!(
                "{{\"status\":{code},\"error\":{},\"sent\":{},\"partial\":{},\"failed\":{},\"left\":{},\"elapsed_seconds\":{seconds:.3},\"files\":[{files}]}}\n",
                json_string(self.error.as_deref().unwrap_or("")),
                count(self.sent),
                count(self.partial),
                count(self.failed),
                count(self.left)
            ));
        }
        code
    }

    /// Picks the exit status; the order of the checks is the documented precedence.
    fn exit_status(&self) -> u8 {
        if let Some(code) = self.early_exit {
            code
        } else if self.directory_error {
            EXIT_DIRECTORY_ERROR
        } else if self.configuration_error {
            EXIT_CONFIGURATION_ERROR
        } else if self.left > 0 {
            EXIT_RETRY
        } else if self.failed > 0 || self.partial > 0 {
            EXIT_REJECTED
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(disposition: Disposition) -> FileReport {
        FileReport::local(std::ffi::OsStr::new("m"), disposition, Some(status::SMTP_RECIPIENTS_REJECTED), "rejected".into())
    }

    fn tally_of(dispositions: &[Disposition]) -> Tally {
        let mut tally = Tally::new(true, Instant::now());
        for &disposition in dispositions {
            tally.record(report(disposition), &ProgressBar::hidden());
        }
        tally
    }

    #[test]
    fn exit_status_precedence() {
        assert_eq!(tally_of(&[]).exit_status(), 0);
        assert_eq!(tally_of(&[Disposition::Sent]).exit_status(), 0);
        assert_eq!(tally_of(&[Disposition::Sent, Disposition::Partial]).exit_status(), EXIT_REJECTED);
        assert_eq!(tally_of(&[Disposition::Rejected, Disposition::Sent]).exit_status(), EXIT_REJECTED);
        assert_eq!(tally_of(&[Disposition::Rejected, Disposition::Retry]).exit_status(), EXIT_RETRY);
        assert_eq!(tally_of(&[Disposition::Retry, Disposition::DirectoryError]).exit_status(), EXIT_DIRECTORY_ERROR);
        let mut stopped = tally_of(&[Disposition::Retry]);
        stopped.configuration_error = true;
        assert_eq!(stopped.exit_status(), EXIT_CONFIGURATION_ERROR);
    }

    #[test]
    fn partial_counts_as_sent() {
        let tally = tally_of(&[Disposition::Sent, Disposition::Partial]);
        assert_eq!((tally.sent, tally.partial, tally.failed, tally.left), (2, 1, 0, 0));
        assert_eq!(tally.files.len(), 1);
    }

    #[test]
    fn reason_lists_fields() {
        let text = format_reason(Some(status::SMTP_MESSAGE_REJECTED), Some("554 5.7.1 spam"), "The server rejected the message.", &[]);
        assert_eq!(text, "status: SMTP_MESSAGE_REJECTED\nreply: 554 5.7.1 spam\nerror: The server rejected the message.\n");
    }

    #[test]
    fn file_json_escapes_name() {
        let mut report = report(Disposition::Rejected);
        report.name = OsString::from("a \"quoted\" name");
        report.moved_to = Some(PathBuf::from("failed/a"));
        let json = report.json();
        assert!(json.starts_with("{\"name\":\"a \\\"quoted\\\" name\",\"result\":\"failed\",\"moved_to\":\"failed/a\",\"status\":11,"), "{json}");
    }
}
