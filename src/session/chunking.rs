//! Sending a message with BDAT (RFC 3030) in place of DATA.

use super::{Delivery, Session};
use crate::address::Address;
use crate::command::Command;
use crate::data::DataEncoder;
use crate::error::{Error, Step};
use crate::request::Request;

/// Size of the pieces of the body that each BDAT chunk carries before encoding. The
/// encoded chunk is at most twice as long, when every line ends in a bare LF. A message up
/// to this size goes out with its envelope in one write.
const BDAT_CHUNK: usize = 128 * 1024;

impl Session<'_> {
    /// Sends the message with BDAT (RFC 3030) in place of DATA. BDAT announces each chunk's
    /// length, so the client need not wait for a 354 before the body. MAIL FROM, every RCPT
    /// TO and the first chunk go out in one write, so a message that fits in one chunk costs
    /// one wait. A longer message waits for the envelope's replies before the rest of the
    /// body follows, so a refused envelope never costs the whole body. The remaining chunks
    /// are then written back to back and their replies read at the end.
    pub(super) fn chunked_message(&mut self, mail: Command, sender: Option<Address>, recipients: &[Address], request: &Request<'_>) -> Result<Delivery, Error> {
        if self.connection.has_unread_input() {
            self.broken = true;
            return Err(Error::Protocol { step: Step::MailFrom, detail: "the server sent lines before MAIL FROM was sent".into() });
        }
        let mut chunks = ChunkEncoder::new(request.body);
        let mut chunk = Vec::with_capacity(2 * BDAT_CHUNK);
        let mut last = chunks.next_chunk(&mut chunk);

        let mut buffer = Vec::with_capacity(chunk.len() + 64 * (recipients.len() + 2));
        let mut group = Vec::with_capacity(recipients.len() + 2);
        group.push(mail);
        group.extend(recipients.iter().cloned().map(Command::RcptTo));
        group.push(Command::Bdat { size: chunk.len(), last });
        for command in &group {
            command.render(&mut buffer);
            self.transcript.client(&command.line());
        }
        buffer.extend_from_slice(&chunk);
        self.transcript.body(chunk.len());
        self.push_quit_after_last_chunk(last, &mut buffer);
        // Nothing of the message counts as sent until the server replies, so a failed write
        // here is a failure at MAIL FROM, which a session may retry on a new connection.
        self.connection.write_all(&buffer).map_err(|failure| self.io_error(failure, Step::MailFrom))?;

        let (mail_reply, (accepted, refused)) = self.read_envelope_replies(recipients)?;
        let mut reply = self.read_reply(Step::Bdat)?;

        // The server rejects BDAT when the envelope failed, so that reply adds nothing.
        if !mail_reply.is_positive() {
            return Err(Error::SenderRejected { sender, reply: mail_reply });
        }
        if accepted.is_empty() {
            return Err(Error::RecipientsRejected(refused));
        }
        if !reply.is_positive() {
            return Err(Error::MessageRejected { reply });
        }

        let mut pending = 0;
        while !last {
            last = chunks.next_chunk(&mut chunk);
            buffer.clear();
            let command = Command::Bdat { size: chunk.len(), last };
            command.render(&mut buffer);
            self.transcript.client(&command.line());
            buffer.extend_from_slice(&chunk);
            self.transcript.body(chunk.len());
            self.push_quit_after_last_chunk(last, &mut buffer);
            self.write_body_piece(&buffer)?;
            pending += 1;
        }

        // Every reply is read, even after a rejected chunk, so that the next command on a
        // kept session pairs with its own reply.
        let mut rejection = None;
        for _ in 0..pending {
            reply = self.read_reply(Step::Bdat)?;
            if !reply.is_positive() && rejection.is_none() {
                rejection = Some(reply.clone());
            }
        }
        if let Some(reply) = rejection {
            return Err(Error::MessageRejected { reply });
        }
        Ok(Delivery { accepted, refused, reply, host: request.host.clone() })
    }

    /// Appends QUIT after the last chunk when the session ends with this message, as
    /// RFC 2920 allows at the end of a group.
    fn push_quit_after_last_chunk(&mut self, last: bool, buffer: &mut Vec<u8>) {
        if last && !self.keep_open {
            Command::Quit.render(buffer);
            self.transcript.client(&Command::Quit.line());
            self.quit_sent = true;
        }
    }
}

/// Encodes the body into BDAT chunks: line endings as after DATA, without dot-stuffing.
struct ChunkEncoder<'b> {
    encoder: DataEncoder,
    pieces: std::iter::Peekable<std::slice::Chunks<'b, u8>>,
}

impl<'b> ChunkEncoder<'b> {
    fn new(body: &'b [u8]) -> Self {
        ChunkEncoder { encoder: DataEncoder::without_dot_stuffing(), pieces: body.chunks(BDAT_CHUNK).peekable() }
    }

    /// Replaces `out` with the next encoded chunk, and returns whether it is the last one.
    /// An empty body gives one empty last chunk.
    fn next_chunk(&mut self, out: &mut Vec<u8>) -> bool {
        out.clear();
        if let Some(piece) = self.pieces.next() {
            self.encoder.encode(piece, out);
        }
        if self.pieces.peek().is_some() {
            return false;
        }
        self.encoder.finish(out);
        true
    }
}
