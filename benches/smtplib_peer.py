"""The peer client from Python's standard library: the same modes as driver.c, with smtplib.

Prints one line of key=value pairs for benches/bench.py. When the server rejects anything,
smtplib raises, so the script exits with status 1.

  smtplib_peer.py per-connection HOST PORT COUNT TEXT_BYTES
  smtplib_peer.py session HOST PORT COUNT TEXT_BYTES
  smtplib_peer.py large HOST PORT TEXT_BYTES
  smtplib_peer.py fresh HOST PORT RECIPIENTS COUNT
  smtplib_peer.py steady HOST PORT RECIPIENTS COUNT
"""

import smtplib
import sys
import time

SENDER = "bench@example.test"
HEADERS = b"From: <" + SENDER.encode() + b">\r\nTo: <sink@example.test>\r\nSubject: benchmark\r\n\r\n"
LINE_TEXT = 78
# Without a name, smtplib looks up the machine's fully qualified name for every connection,
# while libmvsmtp takes the host name from gethostname() without a lookup.
HELO_NAME = "bench.example.test"


def make_body(text_bytes):
    """Return HEADERS and exactly text_bytes of text in CRLF lines, as driver.c builds it."""
    lines = []
    remaining = text_bytes
    while remaining > 0:
        line = LINE_TEXT + 2
        if remaining <= line:
            line = remaining
        elif remaining - line < 3:
            line = remaining - 3
        lines.append(b"x" * (line - 2) + b"\r\n")
        remaining -= line
    return HEADERS + b"".join(lines)


def make_recipients(count):
    return [f"bench-{i}@example.test" for i in range(1, count + 1)]


def connect(host, port):
    return smtplib.SMTP(host, port, local_hostname=HELO_NAME, timeout=30)


def send_fresh(host, port, recipients, body):
    """Send one message on a new connection, QUIT included."""
    client = connect(host, port)
    client.sendmail(SENDER, recipients, body)
    client.quit()


def reset_peak_resident():
    """Lower the peak (VmHWM) to the current resident set size (Linux 4.0 and later), so
    the copies made while building the body do not count."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def peak_resident_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    numbers = [int(value) for value in sys.argv[4:]]

    if mode == "per-connection":
        count, text_bytes = numbers
        body = make_body(text_bytes)
        start = time.perf_counter()
        for _ in range(count):
            send_fresh(host, port, ["sink@example.test"], body)
        print(f"messages={count} seconds={time.perf_counter() - start:.6f}")

    elif mode == "session":
        count, text_bytes = numbers
        body = make_body(text_bytes)
        start = time.perf_counter()
        client = connect(host, port)
        for _ in range(count):
            client.sendmail(SENDER, ["sink@example.test"], body)
        client.quit()
        print(f"messages={count} seconds={time.perf_counter() - start:.6f}")

    elif mode == "large":
        # As in driver.c: two sends, each measured from a reset peak.
        (text_bytes,) = numbers
        body = make_body(text_bytes)
        extra_kb, seconds = [], []
        for _ in range(2):
            reset_peak_resident()
            before_kb = peak_resident_kb()
            start = time.perf_counter()
            send_fresh(host, port, ["sink@example.test"], body)
            seconds.append(time.perf_counter() - start)
            extra_kb.append(peak_resident_kb() - before_kb)
        print(f"bytes={len(body)} seconds={seconds[0]:.6f} "
              f"first_extra_kb={extra_kb[0]} second_extra_kb={extra_kb[1]}")

    elif mode == "fresh":
        recipients, count = numbers
        to = make_recipients(recipients)
        body = make_body(1024)
        send_fresh(host, port, to, body)
        timings = []
        for _ in range(count):
            start = time.perf_counter()
            send_fresh(host, port, to, body)
            timings.append((time.perf_counter() - start) * 1000.0)
        print("ms=" + ",".join(f"{value:.3f}" for value in timings))

    elif mode == "steady":
        recipients, count = numbers
        to = make_recipients(recipients)
        body = make_body(1024)
        client = connect(host, port)
        client.sendmail(SENDER, to, body)
        start = time.perf_counter()
        for _ in range(count):
            client.sendmail(SENDER, to, body)
        milliseconds = (time.perf_counter() - start) * 1000.0
        client.quit()
        print(f"messages={count} ms_per_message={milliseconds / count:.3f}")

    else:
        sys.exit(f"smtplib_peer.py: unknown mode {mode}")


if __name__ == "__main__":
    main()
