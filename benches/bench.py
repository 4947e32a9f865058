"""Run every benchmark of libmvsmtp against its peers and write the results table.

benches/run.sh builds the programs, starts smtp-sink and the delay proxies, and then calls
this script with their ports. Each measurement runs several times (`--repeats`, and
`--waits-repeats` for the wait counts), alternating between libmvsmtp and its peers so that
slow phases of the shared machine hit both. The table shows the median with the individual
runs beside it.
"""

import argparse
import collections
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from smtplib_peer import make_body

LOOPBACK = "127.0.0.1"
MESSAGES = 2000
TEXT_BYTES = 1024
THREADS = 4
LARGE_TEXT_BYTES = 25_000_000
LOAD_PROCESSES = 20
FRESH_MESSAGES = 3
STEADY_MESSAGES = 10
# "libmvsmtp, next announced" is examples/bulk_send.rs: a session that sends each message's
# successor's envelope with its end of data, as mvsmtp outbox does. It has no fresh case.
ANNOUNCED = "libmvsmtp, next announced"
WAITS_CLIENTS = ("libmvsmtp", ANNOUNCED, "smtplib", "curl", "smtp-source")
# The envelope sender of every client (driver.c and smtplib_peer.py use the same address).
# remove_deliveries finds the harness's messages in the test server's maildir by it.
HARNESS_SENDER = "bench@example.test"
# Every subprocess is bounded, so a hung server or client cannot stall the run.
PROCESS_TIMEOUT = 120
HERE = os.path.dirname(os.path.abspath(__file__))


class MeasurementFailed(Exception):
    pass


Outcome = collections.namedtuple("Outcome", "seconds cpu_seconds values")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command, timeout=PROCESS_TIMEOUT):
    """Run a command and return an Outcome: its wall time, its CPU time (user and system)
    and its key=value output."""
    cpu_start = children_cpu_seconds()
    start = time.perf_counter()
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MeasurementFailed(f"{command[0]} timed out after {timeout} s")
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        detail = (completed.stderr or completed.stdout).strip().splitlines()
        raise MeasurementFailed(
            f"{os.path.basename(command[0])} exited with {completed.returncode}: "
            f"{detail[-1] if detail else 'no output'}"
        )
    values = {}
    for field in completed.stdout.split():
        if "=" in field:
            key, value = field.split("=", 1)
            values[key] = value
    return Outcome(seconds, children_cpu_seconds() - cpu_start, values)


def command_output(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def median(values):
    return statistics.median(values)


def format_runs(values, digits):
    return ", ".join(f"{value:,.{digits}f}" for value in values)


def find_shared_library(name):
    """Return the path that the dynamic loader's cache gives for `name`, or None."""
    for line in command_output(["ldconfig", "-p"]).splitlines():
        fields = line.strip().split(" => ")
        if len(fields) == 2 and fields[0].split(" ")[0] == name:
            return fields[1]
    return None


class Programs:
    """Paths of the programs under test and of their peers."""

    def __init__(self, arguments):
        self.driver = arguments.driver
        self.bulk = arguments.bulk
        self.load = arguments.load
        self.library = arguments.library
        self.smtp_source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
        self.curl = shutil.which("curl") or "curl"
        self.smtplib = [sys.executable, os.path.join(HERE, "smtplib_peer.py")]
        self.libcurl = arguments.libcurl or find_shared_library("libcurl.so.4")


# ----------------------------------------------------------------------------- throughput


def measure_throughput(programs, sink_port, repeats):
    """Measure messages per second of libmvsmtp and its peers, each timed as a whole process."""
    port = str(sink_port)
    source = [programs.smtp_source, "-m", str(MESSAGES), "-l", str(TEXT_BYTES)]
    target = f"{LOOPBACK}:{port}"
    per_thread = MESSAGES // THREADS
    cases = [
        {
            "name": f"1. One message per connection, {MESSAGES:,} x 1 KB",
            "target": 1.0,
            "clients": {
                "libmvsmtp": [programs.driver, "per-connection", LOOPBACK, port, str(MESSAGES), str(TEXT_BYTES)],
                "smtp-source": source + ["-s", "1", target],
                "smtplib": programs.smtplib + ["per-connection", LOOPBACK, port, str(MESSAGES), str(TEXT_BYTES)],
            },
        },
        {
            "name": f"2. One reused session, {MESSAGES:,} x 1 KB",
            "target": 2.0,
            "clients": {
                "libmvsmtp": [programs.driver, "session", LOOPBACK, port, str(MESSAGES), str(TEXT_BYTES)],
                "smtp-source": source + ["-s", "1", "-d", target],
                "smtplib": programs.smtplib + ["session", LOOPBACK, port, str(MESSAGES), str(TEXT_BYTES)],
            },
        },
        {
            "name": f"2b. One reused session, next message announced (Rust API, as `mvsmtp outbox` sends), {MESSAGES:,} x 1 KB",
            "target": 2.0,
            "clients": {
                "libmvsmtp": [programs.bulk, "session", LOOPBACK, port, str(MESSAGES), str(TEXT_BYTES)],
                "smtp-source": source + ["-s", "1", "-d", target],
            },
        },
        {
            "name": f"3. {THREADS} threads, {THREADS} sessions, {MESSAGES:,} x 1 KB",
            "target": 1.0,
            "clients": {
                "libmvsmtp": [programs.driver, "threads", LOOPBACK, port, str(THREADS), str(per_thread), str(TEXT_BYTES)],
                "smtp-source": source + ["-s", str(THREADS), "-d", target],
            },
        },
    ]
    results = []
    for case in cases:
        rates = {client: [] for client in case["clients"]}
        cpu = {client: [] for client in case["clients"]}
        errors = {}
        for _ in range(repeats):
            for client, command in case["clients"].items():
                if client in errors:
                    continue
                try:
                    outcome = run(command)
                    rates[client].append(MESSAGES / outcome.seconds)
                    cpu[client].append(outcome.cpu_seconds * 1e6 / MESSAGES)
                except MeasurementFailed as error:
                    errors[client] = str(error)
        results.append({
            "name": case["name"],
            "target": case["target"],
            "rates": rates,
            "cpu_us": cpu,
            "errors": errors,
        })
    return results


# ------------------------------------------------------------------------------ large body


def measure_large(programs, sink_port, repeats):
    """Measure the throughput and peak memory of one 25 MB message, in fresh processes."""
    port = str(sink_port)
    large = str(LARGE_TEXT_BYTES)
    clients = {
        "libmvsmtp": [programs.driver, "large", LOOPBACK, port, large],
        "smtplib": programs.smtplib + ["large", LOOPBACK, port, large],
        "smtp-source": [programs.smtp_source, "-s", "1", "-m", "1", "-l", large, f"{LOOPBACK}:{port}"],
    }
    runs = {client: [] for client in clients}
    errors = {}
    for _ in range(repeats):
        for client, command in clients.items():
            if client in errors:
                continue
            try:
                seconds, _, values = run(command)
            except MeasurementFailed as error:
                errors[client] = str(error)
                continue
            if client == "smtp-source":
                # Timed as a whole process, because smtp-source reports no timings.
                runs[client].append({"mb_per_s": LARGE_TEXT_BYTES / seconds / 1e6})
                continue
            sample = {"mb_per_s": int(values["bytes"]) / float(values["seconds"]) / 1e6}
            for key in ("first_extra_kb", "second_extra_kb", "first_file_kb"):
                if key in values:
                    sample[key] = int(values[key])
            runs[client].append(sample)
    return {"runs": runs, "errors": errors}


# ------------------------------------------------------------------------------- loading


def stripped_size(path):
    with tempfile.TemporaryDirectory() as folder:
        copy = os.path.join(folder, os.path.basename(path))
        shutil.copy(path, copy)
        subprocess.run(["strip", copy], check=True)
        return os.path.getsize(copy)


def measure_load(programs, sink_port):
    """Time dlopen and the first call in fresh processes, and measure the stripped size."""
    cases = {
        "libmvsmtp: dlopen + smtp_version": [programs.load, programs.library, "version", "smtp_version"],
        "libmvsmtp: dlopen + first smtp_send": [programs.load, programs.library, "send", LOOPBACK, str(sink_port)],
    }
    libraries = {"libmvsmtp.so": programs.library}
    if programs.libcurl:
        cases["libcurl: dlopen + curl_version"] = [programs.load, programs.libcurl, "version", "curl_version"]
        libraries["libcurl.so.4"] = programs.libcurl
    results = {}
    for name, command in cases.items():
        samples = []
        try:
            for _ in range(LOAD_PROCESSES):
                samples.append(run(command).values)
        except MeasurementFailed as error:
            results[name] = {"error": str(error)}
            continue
        summary = {
            key: median([float(sample[key]) for sample in samples])
            for key in samples[0]
        }
        results[name] = summary
    sizes = {}
    for name, path in libraries.items():
        real = os.path.realpath(path)
        sizes[name] = {"unstripped": os.path.getsize(real), "stripped": stripped_size(real)}
    return {"times": results, "sizes": sizes}


# --------------------------------------------------------------------------------- waits


def read_reply(connection, port):
    """Read one complete SMTP reply, multi-line replies included."""
    received = b""
    while not (received.endswith(b"\r\n") and received.split(b"\r\n")[-2][3:4] == b" "):
        chunk = connection.recv(4096)
        if not chunk:
            raise MeasurementFailed(f"port {port} closed the connection")
        received += chunk
    return received


def greeting_ms(port):
    """Return the milliseconds from connect() until the whole 220 greeting has arrived."""
    start = time.perf_counter()
    with socket.create_connection((LOOPBACK, port), timeout=10) as connection:
        read_reply(connection, port)
        elapsed = (time.perf_counter() - start) * 1000.0
        connection.sendall(b"QUIT\r\n")
        read_reply(connection, port)
    return elapsed


def extensions(port):
    """Return the EHLO keywords that the server on `port` advertises, such as PIPELINING."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as connection:
        read_reply(connection, port)
        connection.sendall(b"EHLO bench.example.test\r\n")
        reply = read_reply(connection, port).decode("ascii", "replace")
        connection.sendall(b"QUIT\r\n")
        read_reply(connection, port)
    keywords = [line[4:].split(" ")[0].upper() for line in reply.split("\r\n")[1:] if line[4:].strip()]
    return keywords


def noop_ms(port, count=20):
    """Return the milliseconds per NOOP and its reply, one after another on one connection."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as connection:
        read_reply(connection, port)
        start = time.perf_counter()
        for _ in range(count):
            connection.sendall(b"NOOP\r\n")
            read_reply(connection, port)
        elapsed = (time.perf_counter() - start) * 1000.0
        connection.sendall(b"QUIT\r\n")
        read_reply(connection, port)
    return elapsed / count


def curl_command(programs, port, recipients, body_file, messages):
    """Build the command line of one curl process that sends `messages` messages. curl
    reuses its connection for the messages after the first."""
    command = [programs.curl, "-sS", "--max-time", "30"]
    for index in range(messages):
        if index:
            command.append("--next")
        command += [f"smtp://{LOOPBACK}:{port}/bench.example.test", "--mail-from", HARNESS_SENDER]
        for number in range(1, recipients + 1):
            command += ["--mail-rcpt", f"bench-{number}@example.test"]
        command += ["--upload-file", body_file]
    return command


def process_command(programs, client, port, recipients, body_file, messages):
    """Build the command line of a curl or smtp-source process that sends `messages`
    messages on one connection."""
    if client == "curl":
        return curl_command(programs, port, recipients, body_file, messages)
    return [
        programs.smtp_source, "-s", "1", "-d", "-m", str(messages), "-r", str(recipients),
        "-l", str(TEXT_BYTES), "-M", "bench.example.test", "-f", HARNESS_SENDER,
        "-t", HARNESS_SENDER, f"{LOOPBACK}:{port}",
    ]


def client_ms(programs, client, mode, port, recipients, body_file):
    """Return one client's milliseconds per message: the median over fresh connections, or
    the mean over a session's messages after its first one."""
    if client == ANNOUNCED:
        if mode == "fresh":
            return None
        values = run([programs.bulk, mode, LOOPBACK, str(port), str(recipients), str(STEADY_MESSAGES)]).values
        return float(values["ms_per_message"])
    if client in ("libmvsmtp", "smtplib"):
        base = [programs.driver] if client == "libmvsmtp" else programs.smtplib
        count = FRESH_MESSAGES if mode == "fresh" else STEADY_MESSAGES
        values = run(base + [mode, LOOPBACK, str(port), str(recipients), str(count)]).values
        if mode == "fresh":
            return median([float(value) for value in values["ms"].split(",")])
        return float(values["ms_per_message"])

    # curl and smtp-source are timed as whole processes: smtp-source reports no timings, and
    # curl's own timer stops before QUIT. The direct runs take out the process's start.
    if mode == "fresh":
        run(process_command(programs, client, port, recipients, body_file, 1))
        samples = [
            run(process_command(programs, client, port, recipients, body_file, 1)).seconds * 1000.0
            for _ in range(FRESH_MESSAGES)
        ]
        return median(samples)
    one = run(process_command(programs, client, port, recipients, body_file, 1)).seconds
    many = run(process_command(programs, client, port, recipients, body_file, 1 + STEADY_MESSAGES)).seconds
    return (many - one) * 1000.0 / STEADY_MESSAGES


def measure_waits(programs, servers, repeats):
    """Count the replies each client waits for per message, from the time the proxy adds.

    Each case runs directly against the server and through the proxy, and the difference
    is the time the proxy added. A fresh connection also pays the greeting's delay once, so
    that is subtracted too. What remains, divided by the time the proxy adds to one NOOP
    and its reply, is the number of waits after the greeting. The proxy's nominal round
    trip is twice its delay, but Python's timers and the proxy's own work add about a
    millisecond, which would miscount clients that wait 15 times.
    """
    body_folder = tempfile.mkdtemp(prefix="mvsmtp-bench-")
    body_file = os.path.join(body_folder, "message.eml")
    with open(body_file, "wb") as output:
        output.write(make_body(TEXT_BYTES))

    cases = [("fresh", 1), ("fresh", 10), ("steady", 1), ("steady", 10)]
    results = []
    try:
        for server in servers:
            greeting = {
                "direct": median([greeting_ms(server["direct"]) for _ in range(5)]),
                "proxy": median([greeting_ms(server["proxy"]) for _ in range(5)]),
            }
            greeting_delay = greeting["proxy"] - greeting["direct"]
            noop = {
                "direct": median([noop_ms(server["direct"]) for _ in range(repeats)]),
                "proxy": median([noop_ms(server["proxy"]) for _ in range(repeats)]),
            }
            round_trip = noop["proxy"] - noop["direct"]
            rows = []
            for mode, recipients in cases:
                row = {"mode": mode, "recipients": recipients, "clients": {}}
                for client in server["clients"]:
                    direct, proxied = [], []
                    try:
                        for _ in range(repeats):
                            direct.append(client_ms(programs, client, mode, server["direct"], recipients, body_file))
                            proxied.append(client_ms(programs, client, mode, server["proxy"], recipients, body_file))
                    except (MeasurementFailed, KeyError, ValueError) as error:
                        row["clients"][client] = {"error": str(error)}
                        continue
                    if None in direct:
                        row["clients"][client] = {"not_applicable": True}
                        continue
                    added = median(proxied) - median(direct)
                    if mode == "fresh":
                        added -= greeting_delay
                    row["clients"][client] = {
                        "waits": added / round_trip,
                        "proxied_ms": median(proxied),
                        "direct_ms": median(direct),
                    }
                rows.append(row)
            results.append({"server": server, "greeting": greeting, "noop": noop, "rows": rows})
    finally:
        shutil.rmtree(body_folder, ignore_errors=True)
    return results


def remove_deliveries(maildir):
    """Delete the messages that the wait counts delivered to the test server's maildir and
    return how many. Only files from the harness's sender, which no test uses, are deleted.
    Postfix delivers after it accepts, so this first waits until their number has not
    changed for 3 seconds, at most 30 seconds."""
    new_folder = os.path.join(maildir, "new")
    sender_line = f"Return-Path: <{HARNESS_SENDER}>".encode()

    def harness_files():
        found = []
        for name in os.listdir(new_folder):
            path = os.path.join(new_folder, name)
            try:
                with open(path, "rb") as message:
                    if message.readline().rstrip(b"\r\n") == sender_line:
                        found.append(path)
            except OSError:
                continue
        return found

    deadline = time.monotonic() + 30
    files = harness_files()
    stable_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - stable_since < 3:
        time.sleep(0.5)
        latest = harness_files()
        if len(latest) != len(files):
            stable_since = time.monotonic()
        files = latest
    for path in files:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    return len(files)


# ------------------------------------------------------------------------------- report


def machine_lines(root, load_before, load_after):
    cpu = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = command_output(["git", "-C", root, "rev-parse", "--short", "HEAD"])
    if command_output(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"]):
        commit += " with uncommitted changes"
    postfix = command_output(["dpkg-query", "-W", "-f", "${Version}", "postfix"])
    return [
        f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}; commit {commit}",
        f"- CPU: {cpu}, {os.cpu_count()} cores (`nproc`: {command_output(['nproc'])})",
        f"- Kernel: {platform.release()}; {command_output(['rustc', '--version'])}",
        f"- Peers: smtp-source and smtp-sink of Postfix {postfix}; Python {platform.python_version()} smtplib; "
        f"{command_output(['curl', '--version']).splitlines()[0].split(' (')[0]}",
        f"- Load average (1 minute) before the measurements: {load_before:.2f}; after: {load_after:.2f}. "
        "Other work on the machine slows some runs; the individual runs show how much.",
    ]


def verdict(ratio, target):
    return "met" if ratio >= target else "missed"


def throughput_table(results):
    lines = [
        "| measurement | libmvsmtp msg/s | smtp-source msg/s | ratio | target | result "
        "| smtplib msg/s | ratio to smtplib | CPU per message, libmvsmtp / smtp-source |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    details = []
    for case in results:
        rates, cpu, errors = case["rates"], case["cpu_us"], case["errors"]
        cells = {}
        for client in ("libmvsmtp", "smtp-source", "smtplib"):
            if client in errors:
                cells[client] = "failed"
                details.append(f"- {case['name']}, {client}: FAILED: {errors[client]}")
            elif rates.get(client):
                cells[client] = f"{median(rates[client]):,.0f}"
                details.append(f"- {case['name']}, {client}: {format_runs(rates[client], 0)}")
            else:
                cells[client] = "n/a"
        ratio = result = smtplib_ratio = cpu_cell = "n/a"
        if rates.get("libmvsmtp") and rates.get("smtp-source") and not errors:
            value = median(rates["libmvsmtp"]) / median(rates["smtp-source"])
            ratio, result = f"{value:.2f}x", verdict(value, case["target"])
            cpu_cell = f"{median(cpu['libmvsmtp']):.0f} / {median(cpu['smtp-source']):.0f} µs"
        if rates.get("libmvsmtp") and rates.get("smtplib") and not errors:
            smtplib_ratio = f"{median(rates['libmvsmtp']) / median(rates['smtplib']):.2f}x"
        if rates.get("libmvsmtp") and rates.get("smtp-source") and not errors:
            # Each run of libmvsmtp is followed by its peer's, so the pair saw similar load.
            paired = [mine / peer for mine, peer in zip(rates["libmvsmtp"], rates["smtp-source"])]
            details.append(f"- {case['name']}, libmvsmtp / smtp-source run by run: {format_runs(paired, 2)}")
        lines.append(
            f"| {case['name']} | {cells['libmvsmtp']} | {cells['smtp-source']} | {ratio} | "
            f">= {case['target']:.1f}x | {result} | {cells['smtplib']} | {smtplib_ratio} | {cpu_cell} |"
        )
    return lines + ["", "Individual runs (messages per second):", ""] + details


def large_table(large):
    runs, errors = large["runs"], large["errors"]
    lines = [
        "| client | MB/s | runs | extra peak, first send, kB | extra peak, second send, kB |",
        "|---|---:|---|---:|---:|",
    ]

    def memory_cell(samples, key):
        values = [sample[key] for sample in samples if key in sample]
        return f"{median(values):,.0f} ({format_runs(values, 0)})" if values else "not measured"

    for client in ("libmvsmtp", "smtp-source", "smtplib"):
        if client in errors:
            lines.append(f"| {client} | failed: {errors[client]} | | | |")
            continue
        samples = runs[client]
        if not samples:
            continue
        speeds = [sample["mb_per_s"] for sample in samples]
        lines.append(
            f"| {client} | {median(speeds):,.1f} | {format_runs(speeds, 1)} | "
            f"{memory_cell(samples, 'first_extra_kb')} | {memory_cell(samples, 'second_extra_kb')} |"
        )

    summary = []
    library = runs["libmvsmtp"] if "libmvsmtp" not in errors else []
    if library and runs["smtp-source"] and "smtp-source" not in errors:
        speed = median([sample["mb_per_s"] for sample in library])
        source = median([sample["mb_per_s"] for sample in runs["smtp-source"]])
        summary.append(f"- Throughput: libmvsmtp {speed:,.1f} MB/s, {speed / source:.2f}x smtp-source.")
    if library:
        first_kb = median([sample["first_extra_kb"] for sample in library])
        second_kb = median([sample["second_extra_kb"] for sample in library])
        file_kb = median([sample["first_file_kb"] for sample in library])
        # The send's own memory is the rise of the peak less the pages mapped from files
        # (the library's and libc's code, paged in on the first call whatever the body).
        own_kb = first_kb - file_kb
        result = "met" if max(own_kb, second_kb) * 1024 < 1_000_000 else "missed"
        whole = "under" if first_kb * 1024 < 1_000_000 else "over"
        comparison = ""
        if runs["smtplib"] and "smtplib" not in errors:
            smtplib_kb = median([sample["first_extra_kb"] for sample in runs["smtplib"]])
            comparison = f" smtplib used {smtplib_kb:,.0f} kB, {smtplib_kb / max(first_kb, 1):.0f}x as much."
        summary.append(
            f"- Memory beyond the caller's buffer: libmvsmtp {first_kb:,.0f} kB on the first send "
            f"in a process, of which {file_kb:,.0f} kB is code and read-only data paged in from the "
            f"library's and libc's files (shared with other processes), and "
            f"{second_kb:,.0f} kB on the second. Target: under 1 MB for the send's own memory "
            f"({own_kb:,.0f} kB, then {second_kb:,.0f} kB); {result}. The whole first rise is {whole} "
            f"1 MB.{comparison}"
        )
    return lines + [""] + summary


def waits_tables(waits):
    lines = []
    for block in waits:
        server = block["server"]
        greeting, noop = block["greeting"], block["noop"]
        lines += [
            f"Through the proxy to {server['name']} (port {server['direct']}, {server['features']}). "
            f"Greeting: {greeting['direct']:.1f} ms direct, {greeting['proxy']:.1f} ms through the proxy. "
            f"One wait (a NOOP and its reply): {noop['direct']:.2f} ms direct, "
            f"{noop['proxy']:.2f} ms through the proxy.",
            "",
            "| case | " + " | ".join(server["clients"]) + " |",
            "|---|" + "---|" * len(server["clients"]),
        ]
        for row in block["rows"]:
            label = (
                f"fresh connection, {row['recipients']} recipient{'s' if row['recipients'] > 1 else ''}"
                if row["mode"] == "fresh"
                else f"reused session, per message, {row['recipients']} recipient{'s' if row['recipients'] > 1 else ''}"
            )
            cells = []
            for client in server["clients"]:
                outcome = row["clients"][client]
                if "not_applicable" in outcome:
                    cells.append("n/a")
                elif "error" in outcome:
                    cells.append(f"failed: {outcome['error']}")
                else:
                    cells.append(
                        f"**{round(outcome['waits'])}** ({outcome['waits']:.2f}; "
                        f"{outcome['proxied_ms']:.1f} ms proxied, {outcome['direct_ms']:.1f} ms direct)"
                    )
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def load_table(load):
    lines = [
        "| measurement (median of 20 processes) | dlopen, ms | first call, ms | total, ms | second call, ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in load["times"].items():
        if "error" in values:
            lines.append(f"| {name} | failed: {values['error']} | | | |")
            continue
        second = f"{values['second_call_ms']:.2f}" if "second_call_ms" in values else ""
        lines.append(
            f"| {name} | {values['dlopen_ms']:.2f} | {values['first_call_ms']:.2f} | "
            f"{values['total_ms']:.2f} | {second} |"
        )
    lines += ["", "| library | stripped, bytes | stripped, MB | unstripped, bytes |", "|---|---:|---:|---:|"]
    for name, size in load["sizes"].items():
        lines.append(
            f"| {name} | {size['stripped']:,} | {size['stripped'] / 1e6:.2f} | {size['unstripped']:,} |"
        )
    return lines


def build_report(arguments, servers, measured):
    """Return the results as Markdown."""
    lines = ["# Benchmark results", ""] + measured["machine"] + [
        f"- Runs: {arguments.repeats} of each throughput and memory measurement and "
        f"{arguments.waits_repeats} of each wait count, median shown; "
        f"measurements took {measured['seconds']:.0f} s.",
        "",
        "## Throughput against smtp-sink (1 to 3)",
        "",
        f"smtp-sink: {servers[0]['features']}.",
        "",
    ]
    lines += throughput_table(measured["throughput"])
    lines += ["", f"## Waits per message through a {arguments.delay_ms:g} ms delay proxy (4)", ""]
    lines += [
        "Each cell: the rounded count of replies waited for after the greeting, the unrounded "
        "figure, and the median elapsed time per message through the proxy and directly.",
        "",
    ]
    if len(servers) == 1:
        lines += ["Postfix on 127.0.0.1:2525 was not running, so its rows were skipped.", ""]
    lines += waits_tables(measured["waits"])
    lines += [f"## One {LARGE_TEXT_BYTES / 1e6:.0f} MB body to smtp-sink (5)", ""]
    lines += large_table(measured["large"])
    lines += ["", "## Loading the library (6)", ""]
    lines += load_table(measured["load"])
    return "\n".join(lines) + "\n"


def any_failed(measured):
    return bool(
        any(case["errors"] for case in measured["throughput"])
        or measured["large"]["errors"]
        or any("error" in values for values in measured["load"]["times"].values())
        or any(
            "error" in outcome
            for block in measured["waits"]
            for row in block["rows"]
            for outcome in row["clients"].values()
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the repository's top folder")
    parser.add_argument("--driver", required=True, help="the compiled benches/driver.c")
    parser.add_argument("--bulk", required=True, help="the compiled examples/bulk_send.rs")
    parser.add_argument("--load", required=True, help="the compiled benches/load.c")
    parser.add_argument("--library", required=True, help="libmvsmtp.so")
    parser.add_argument("--libcurl", help="libcurl's path, the peer for loading (default: from ldconfig)")
    parser.add_argument("--sink-port", type=int, required=True, help="smtp-sink's port")
    parser.add_argument("--sink-proxy-port", type=int, required=True, help="the delay proxy to smtp-sink")
    parser.add_argument("--postfix-port", type=int, help="Postfix's plain SMTP port, when it runs")
    parser.add_argument("--postfix-proxy-port", type=int, help="the delay proxy to Postfix")
    parser.add_argument("--postfix-maildir", help="the test server's maildir; the run's deliveries are deleted")
    parser.add_argument("--delay-ms", type=float, default=10.0, help="the proxy's delay per chunk")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each throughput and memory measurement")
    # Wait counts vary far less than throughput, and each run takes seconds.
    parser.add_argument("--waits-repeats", type=int, default=3, help="runs of each wait count")
    parser.add_argument("--output", required=True, help="the Markdown file to write")
    arguments = parser.parse_args()
    # SystemExit unwinds through subprocess.run, which kills the client it is running.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    programs = Programs(arguments)
    repeats = arguments.repeats

    servers = [{
        "name": "smtp-sink",
        "direct": arguments.sink_port,
        "proxy": arguments.sink_proxy_port,
        "clients": WAITS_CLIENTS,
    }]
    if arguments.postfix_port and arguments.postfix_proxy_port:
        # Postfix offers CHUNKING, which none of the peers uses, and the peers do not pipeline
        # either, so their counts are those against smtp-sink. Leaving them out saves about
        # 3,000 deliveries to the test server's maildir per run.
        servers.append({
            "name": "Postfix",
            "direct": arguments.postfix_port,
            "proxy": arguments.postfix_proxy_port,
            "clients": ("libmvsmtp", ANNOUNCED),
        })
    for server in servers:
        offered = extensions(server["direct"])
        server["features"] = ", ".join(
            f"{keyword} {'offered' if keyword in offered else 'not offered'}"
            for keyword in ("PIPELINING", "CHUNKING")
        )

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    measured = {}
    print("Measuring throughput (1 to 3)...", file=sys.stderr)
    measured["throughput"] = measure_throughput(programs, arguments.sink_port, repeats)
    print("Measuring the 25 MB body (5)...", file=sys.stderr)
    measured["large"] = measure_large(programs, arguments.sink_port, repeats)
    print("Measuring loading (6)...", file=sys.stderr)
    measured["load"] = measure_load(programs, arguments.sink_port)
    print("Measuring waits through the delay proxy (4)...", file=sys.stderr)
    measured["waits"] = measure_waits(programs, servers, arguments.waits_repeats)
    if len(servers) > 1 and arguments.postfix_maildir and os.path.isdir(arguments.postfix_maildir):
        removed = remove_deliveries(arguments.postfix_maildir)
        print(f"Deleted the {removed} messages delivered to {arguments.postfix_maildir}.", file=sys.stderr)
    measured["seconds"] = time.perf_counter() - started
    measured["machine"] = machine_lines(arguments.root, load_before, os.getloadavg()[0])

    report = build_report(arguments, servers, measured)
    os.makedirs(os.path.dirname(os.path.abspath(arguments.output)), exist_ok=True)
    with open(arguments.output, "w") as output:
        output.write(report)
    print(report)
    if any_failed(measured):
        print("Some measurements failed; see the table.", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
