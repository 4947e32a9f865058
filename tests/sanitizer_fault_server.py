#!/usr/bin/env python3
"""Scripted SMTP server for one fault cell, used by tests/sanitizers.sh.

    python3 tests/sanitizer_fault_server.py STEP FAULT PORT_FILE

It listens on 127.0.0.1 on a port chosen by the kernel and writes that port
to PORT_FILE. Then it accepts one connection from tests/c/fault_host.c and
plays a short SMTP session, misbehaving at the step STEP in the way that FAULT
names. STEP and FAULT are the arguments of fault_host.c. This is a reduced form
of the scripted server in tests/fault_matrix.rs: it plays the cells that
tests/sanitizers.sh runs under valgrind and AddressSanitizer, and it checks
only that the client got as far as the step. tests/fault_matrix.rs checks the
results of every cell.

The exit code is 0 when the client reached the step, and 1 with a message on
standard error otherwise.
"""

import os
import socket
import struct
import sys
import time

# How long the server waits for the client to connect, send or close, in seconds.
# It is long because the client may run under valgrind.
WAIT_SECONDS = 90

# Bytes of the body that the server reads before a fault in the body.
BODY_BYTES_BEFORE_FAULT = 256 * 1024

# A small, fixed receive buffer turns off autotuning, so that the client's writes
# stop soon when the server stops reading.
BODY_RECEIVE_BUFFER = 64 * 1024

GREETING = b"220 fake.example.test ESMTP\r\n"
HELO_REPLY = b"250 fake.example.test\r\n"
STARTTLS_REPLY = b"220 2.0.0 Ready to start TLS\r\n"
AUTH_REPLY = b"235 2.7.0 Authentication successful\r\n"
MAIL_REPLY = b"250 2.1.0 Ok\r\n"
RCPT_REPLY = b"250 2.1.5 Ok\r\n"
DATA_REPLY = b"354 End data with <CR><LF>.<CR><LF>\r\n"
END_OF_DATA_REPLY = b"250 2.0.0 Ok: queued as FAKE1\r\n"
QUIT_REPLY = b"221 2.0.0 Bye\r\n"
EXTRA_LINE = b"250 2.0.0 unsolicited extra line\r\n"
UNKNOWN_COMMAND_REPLY = b"502 5.5.2 Error: command not recognized\r\n"

REJECTION_LINES = {
    "421": b"421 4.3.2 Service shutting down, closing the connection\r\n",
    "451": b"451 4.3.0 Temporary failure, try again later\r\n",
    "554": b"554 5.7.1 Rejected by local policy\r\n",
}


def ehlo_reply(step):
    """Returns the reply to EHLO: 502 in the HELO row, else the extensions the row needs."""
    if step == "helo":
        return UNKNOWN_COMMAND_REPLY
    if step in ("starttls", "tls"):
        return b"250-fake.example.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
    if step == "auth":
        return b"250-fake.example.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
    return b"250-fake.example.test\r\n250 8BITMIME\r\n"


class Session:
    """One connection, played with the fault at one step."""

    def __init__(self, connection, step, fault):
        self.connection = connection
        self.reader = connection.makefile("rb")
        self.step = step
        self.fault = fault
        self.fault_done = False

    def send(self, data):
        # After some faults the client has gone, so write errors are expected.
        try:
            self.connection.sendall(data)
        except OSError:
            pass

    def drip(self, data):
        """Sends the bytes one per TCP segment."""
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index in range(len(data)):
            self.send(data[index:index + 1])
            time.sleep(0.0002)

    def read_line(self):
        """Returns one line without its ending, or None at the end of the stream or on an error."""
        try:
            line = self.reader.readline()
        except OSError:
            return None
        if not line:
            return None
        return line.rstrip(b"\r\n").decode("latin-1")

    def read_until_closed(self):
        while self.read_line() is not None:
            pass

    def reset(self):
        """Closes the connection with RST: SO_LINGER with a zero time, then close."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.reader.close()
        self.connection.close()

    def respond(self, step, normal_reply):
        """Plays the fault when this is the cell's step, or else the normal reply.

        Returns False when the conversation is over.
        """
        if step != self.step or self.fault_done:
            self.send(normal_reply)
            return True
        self.fault_done = True

        if self.fault == "silence":
            # The client gives up after its timeout and closes.
            self.read_until_closed()
            return False
        if self.fault == "close":
            self.connection.shutdown(socket.SHUT_WR)
            self.read_until_closed()
            return False
        if self.fault == "reset":
            self.reset()
            return False
        if self.fault in REJECTION_LINES:
            self.send(REJECTION_LINES[self.fault])
        elif self.fault == "malformed":
            self.send(b"hello\r\n")
        elif self.fault == "long-line":
            self.send(normal_reply[:3] + b" " + b"x" * (1024 * 1024) + b"\r\n")
        elif self.fault == "many-lines":
            self.send(normal_reply[:3] + b"-more\r\n" * 100_000 + normal_reply[:3] + b" end\r\n")
        elif self.fault == "byte-by-byte":
            self.drip(normal_reply)
        elif self.fault == "extra-line":
            self.send(normal_reply + EXTRA_LINE)
        elif self.fault == "non-utf8":
            self.send(normal_reply[:4] + b"caf\xe9 \xff\xfe " + normal_reply[4:])
        else:
            raise SystemExit(f"unknown fault {self.fault!r}")
        return True

    def play_starttls(self):
        """Plays STARTTLS, and in the TLS handshake row the fault in place of TLS records."""
        if self.step == "starttls":
            # The cells run here leave the client without TLS, so the session goes on in
            # plain text until the client's QUIT.
            return self.respond("starttls", STARTTLS_REPLY)

        self.send(STARTTLS_REPLY)
        client_hello = self.connection.recv(4096)
        if not client_hello:
            print("the client sent no TLS ClientHello after the 220 to STARTTLS", file=sys.stderr)
            return False
        if self.respond("tls", STARTTLS_REPLY):
            self.read_until_closed()
        return False

    def play_data(self):
        """Plays DATA and the message data."""
        if not self.respond("data", DATA_REPLY):
            return False
        if self.step == "data" and self.fault not in ("byte-by-byte", "non-utf8"):
            # After a refusal or a bad reply to DATA the client sends no message.
            return True
        if self.step == "body":
            self.fault_in_body()
            return False
        while True:
            line = self.read_line()
            if line is None:
                print("the connection ended inside the message data", file=sys.stderr)
                return False
            if line == ".":
                break
        return self.respond("end", END_OF_DATA_REPLY)

    def fault_in_body(self):
        """Reads the first part of the body, then plays the fault in the middle of it."""
        received = 0
        while received < BODY_BYTES_BEFORE_FAULT:
            chunk = self.reader.read1(65536)
            if not chunk:
                print(f"the connection ended after {received} bytes of the body", file=sys.stderr)
                return
            received += len(chunk)

        self.fault_done = True
        if self.fault == "reset":
            self.reset()
            return
        if self.fault in REJECTION_LINES:
            self.send(REJECTION_LINES[self.fault])
        # FIN first, then a close with unread body bytes, which sends RST.
        self.connection.shutdown(socket.SHUT_WR)
        time.sleep(0.2)
        self.reader.close()
        self.connection.close()

    def play(self):
        keep_going = self.respond("greeting", GREETING)
        while keep_going:
            line = self.read_line()
            if line is None:
                break
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                keep_going = self.respond("ehlo", ehlo_reply(self.step))
            elif verb == "HELO":
                keep_going = self.respond("helo", HELO_REPLY)
            elif verb == "STARTTLS" and self.step in ("starttls", "tls"):
                keep_going = self.play_starttls()
            elif verb == "AUTH":
                keep_going = self.respond("auth", AUTH_REPLY)
            elif verb == "MAIL":
                keep_going = self.respond("mail", MAIL_REPLY)
            elif verb == "RCPT":
                keep_going = self.respond("rcpt", RCPT_REPLY)
            elif verb == "DATA":
                keep_going = self.play_data()
            elif verb == "QUIT":
                if self.respond("quit", QUIT_REPLY):
                    self.read_until_closed()
                keep_going = False
            else:
                self.send(UNKNOWN_COMMAND_REPLY)


def main():
    if len(sys.argv) != 4:
        print(f"usage: {sys.argv[0]} STEP FAULT PORT_FILE", file=sys.stderr)
        return 2
    step, fault, port_file = sys.argv[1:]

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if step == "body":
        # Accepted sockets inherit the receive buffer of the listener.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BODY_RECEIVE_BUFFER)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(WAIT_SECONDS)

    # Write the port to a temporary name first, so that the reader never sees half of it.
    with open(port_file + ".partial", "w", encoding="ascii") as file:
        file.write(f"{listener.getsockname()[1]}\n")
    os.replace(port_file + ".partial", port_file)

    try:
        connection, _ = listener.accept()
    except socket.timeout:
        print(f"the client did not connect within {WAIT_SECONDS} s", file=sys.stderr)
        return 1
    listener.close()
    connection.settimeout(WAIT_SECONDS)

    session = Session(connection, step, fault)
    session.play()
    if not session.fault_done:
        print(f"the client never reached the {step} step", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
