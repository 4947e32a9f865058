#!/usr/bin/env bash
# Checks the OpenQM/ScarletDME wrapper on a local ScarletDME against the Postfix test server
# of the repository. It compiles the BASIC of mvbasic/common, mvbasic/cli and mvbasic/qm
# in a ScarletDME account and runs a check program through MVSMTP.SEND and
# MVSMTP.SEND.RAW. Then it checks what Postfix delivered, and SENDMAIL through a mail link.
#
# Usage: bash mvbasic/qm/check-scarletdme.sh ACCOUNT_DIRECTORY
#
# ACCOUNT_DIRECTORY is an existing ScarletDME account (create one with CREATE.ACCOUNT).
# QM names the qm program (default: qm on PATH); SCARLET_CONFIG is passed on to it.
# Needs: cargo build --release, and bash tests/postfix/test-server.sh up.
# The check writes the items MVSMTP.* of the file BP in that account.
set -euo pipefail

if [[ $# -ne 1 || ! -e "$1/VOC" ]]; then
    echo "Usage: $0 ACCOUNT_DIRECTORY (a ScarletDME account, with a VOC file)" >&2
    exit 2
fi
ACCOUNT=$(cd "$1" && pwd)
QM=${QM:-qm}
REPOSITORY=$(cd "$(dirname "$0")/../.." && pwd)
TOOL="$REPOSITORY/target/release/mvsmtp"
MAILDIR=${MVSMTP_TEST_MAILDIR:-/tmp/mvsmtp-postfix/maildir}/new
TAG="qm$(date +%s)$$"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILURES=0

[[ -x "$TOOL" ]] || { echo "Build the tool first: cargo build --release" >&2; exit 2; }

run_qm() {
    (cd "$ACCOUNT" && "$QM" -quiet "$1" < /dev/null)
}

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; FAILURES=$((FAILURES + 1)); }

# Prints the file that Postfix stored for the address $1, waiting up to 10 seconds.
delivered() {
    local file
    for _ in $(seq 50); do
        file=$(grep -l -i -m1 "^X-Original-To: $1\$" "$MAILDIR"/* 2>/dev/null | head -n1 || true)
        if [[ -n "$file" ]]; then cat "$file"; return 0; fi
        sleep 0.2
    done
    return 1
}

# Checks that the output line of case $1 is "CASE $1 STATUS $2" and its ERRTEXT contains $3.
expect_result() {
    local line
    line=$(grep -a "^CASE $1 " "$WORK/output" || true)
    if [[ "$line" != "CASE $1 STATUS $2 ERRTEXT "* ]]; then
        fail "case $1: expected status $2, got: ${line:-no output line}"
    elif [[ -n "$3" && "$line" != *"$3"* ]]; then
        fail "case $1: ERRTEXT lacks \"$3\": $line"
    else
        pass "case $1 returned status $2"
    fi
}

echo "== Compiling in $ACCOUNT"
if [[ ! -d "$ACCOUNT/BP" ]]; then
    run_qm "CREATE.FILE BP DIRECTORY" > /dev/null
fi
cp "$REPOSITORY"/mvbasic/common/MVSMTP.H "$REPOSITORY"/mvbasic/common/MVSMTP.TEST \
   "$REPOSITORY"/mvbasic/cli/MVSMTP.* "$REPOSITORY"/mvbasic/qm/MVSMTP.* "$ACCOUNT/BP/"

# The check program. ENV() gives it the tag that makes its addresses unique and the
# folder of its test files.
cat > "$ACCOUNT/BP/MVSMTP.CHECK" <<'BASIC'
$INCLUDE MVSMTP.H
      TAG = ENV("CHECK_TAG")
      FILES = ENV("CHECK_FILES")
      SERVER = "host=127.0.0.1":SMTP.AM:"port=2525"
      Q = CHAR(34)
*
* 1: characters that a shell would expand, in every argument.
      OPTIONS = SERVER
      OPTIONS<-1> = "header=X-Check: it's $HOME `id` $(id) ":Q:"q":Q:" \ ; & | > *"
      OPTIONS<-1> = "cc=c1cc-":TAG:"@example.test":SMTP.VM:"c1cc2-":TAG:"@example.test"
      TO = Q:"Smith, John":Q:" <c1-":TAG:"@example.test>":SMTP.VM:"c1b-":TAG:"@example.test"
      SUBJECT = "It's ":Q:"quoted":Q:" $HOME `id` $(id) ; & | > * \ März"
      BODY = "First line"
      BODY<2> = ".line with a leading dot"
      BODY<3> = "It's $HOME `id`"
      ATTACHMENTS = FILES:"/it's a file.txt":SMTP.VM:"Rechnung März.txt":SMTP.VM:"text/plain"
      ATTACHMENTS<2> = SMTP.VM:"notes.txt":SMTP.VM:"":SMTP.VM:"memory line 1":SMTP.SM:"memory line 2"
      CALL MVSMTP.SEND(OPTIONS, "Billing <billing@example.test>", TO, SUBJECT, BODY, ATTACHMENTS, STATUS, ERRTEXT)
      CRT "CASE 1 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* 2: one recipient refused.
      TO = "c2-":TAG:"@example.test":SMTP.VM:"reject@example.test"
      CALL MVSMTP.SEND(SERVER, "billing@example.test", TO, "partial", "text", "", STATUS, ERRTEXT)
      CRT "CASE 2 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* 3: every recipient refused.
      CALL MVSMTP.SEND(SERVER, "billing@example.test", "reject@example.test", "refused", "text", "", STATUS, ERRTEXT)
      CRT "CASE 3 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* 4: a password in OPTIONS is refused before anything runs.
      OPTIONS = SERVER:SMTP.AM:" Password =secret"
      CALL MVSMTP.SEND(OPTIONS, "billing@example.test", "c4-":TAG:"@example.test", "s", "t", "", STATUS, ERRTEXT)
      CRT "CASE 4 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* 5: an unknown option, reported by the tool; its message has JSON-escaped quotes.
      OPTIONS = SERVER:SMTP.AM:"colour=blue"
      CALL MVSMTP.SEND(OPTIONS, "billing@example.test", "c5-":TAG:"@example.test", "s", "t", "", STATUS, ERRTEXT)
      CRT "CASE 5 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* 6: a ready-made message.
      MESSAGE = "From: billing@example.test"
      MESSAGE<2> = "To: c6-":TAG:"@example.test"
      MESSAGE<3> = "Subject: raw check"
      MESSAGE<4> = ""
      MESSAGE<5> = ".dot line"
      MESSAGE<6> = "last line"
      CALL MVSMTP.SEND.RAW(SERVER, "billing@example.test", "c6-":TAG:"@example.test", MESSAGE, STATUS, ERRTEXT)
      CRT "CASE 6 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* 7: an empty body.
      CALL MVSMTP.SEND(SERVER, "billing@example.test", "c7-":TAG:"@example.test", "empty body", "", "", STATUS, ERRTEXT)
      CRT "CASE 7 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* 8: a body of 3000 lines of 100 characters, far beyond any command line.
      BODY = ""
      FOR LINE.NUMBER = 1 TO 3000
         BODY<LINE.NUMBER> = STR("x", 96):FMT(LINE.NUMBER, "R%4")
      NEXT LINE.NUMBER
      CALL MVSMTP.SEND(SERVER, "billing@example.test", "c8-":TAG:"@example.test", "large body", BODY, "", STATUS, ERRTEXT)
      CRT "CASE 8 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* 9: an attachment with neither path nor content.
      ATTACHMENTS = SMTP.VM:"name.txt"
      CALL MVSMTP.SEND(SERVER, "billing@example.test", "c9-":TAG:"@example.test", "s", "t", ATTACHMENTS, STATUS, ERRTEXT)
      CRT "CASE 9 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* 10: an attachment file that does not exist.
      CALL MVSMTP.SEND(SERVER, "billing@example.test", "c10-":TAG:"@example.test", "s", "t", "/nonexistent/invoice.pdf", STATUS, ERRTEXT)
      CRT "CASE 10 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* 11: Latin-1 text, as a system without NLS stores it.
      OPTIONS = SERVER:SMTP.AM:"charset=ISO-8859-1"
      CALL MVSMTP.SEND(OPTIONS, "billing@example.test", "c11-":TAG:"@example.test", "Caf":CHAR(233), "Cr":CHAR(232):"me", "", STATUS, ERRTEXT)
      CRT "CASE 11 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
   END
BASIC

cat > "$ACCOUNT/BP/MVSMTP.CHECK.SENDMAIL" <<'BASIC'
      TAG = ENV("CHECK_TAG")
      SENDMAIL "ignored@example.test", "sm-":TAG:"@example.test", "", "", "ScarletDME SENDMAIL check", "line 1":@FM:"line 2", ""
      CRT "SENDMAIL STATUS() ":STATUS()
   END
BASIC

# The outbox check writes its messages with MVSMTP.OUTBOX.WRITE and sends them with
# MVSMTP.OUTBOX.RUN.
cat > "$ACCOUNT/BP/MVSMTP.CHECK.OUTBOX" <<'BASIC'
$INCLUDE MVSMTP.H
      TAG = ENV("CHECK_TAG")
      OUTBOX = ENV("CHECK_OUTBOX")
*
* 20 messages, of which 2 go to a recipient that the test server rejects.
      FOR MESSAGE.NUMBER = 1 TO 20
         NAME = "msg-":FMT(MESSAGE.NUMBER, "R%3")
         IF MESSAGE.NUMBER = 5 OR MESSAGE.NUMBER = 15 THEN
            TO = "reject@example.test"
         END ELSE
            TO = "ob":MESSAGE.NUMBER:"-":TAG:"@example.test"
         END
         SUBJECT = "Outbox ":TAG:" message ":MESSAGE.NUMBER
         BODY = "Line 1 of message ":MESSAGE.NUMBER:SMTP.AM:".leading dot":SMTP.AM:"last line"
         CALL MVSMTP.OUTBOX.WRITE(OUTBOX, NAME, "Billing <billing@example.test>", TO, SUBJECT, BODY, STATUS, ERRTEXT)
         IF STATUS THEN CRT "WRITE ":NAME:" STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      NEXT MESSAGE.NUMBER
*
* A UTF-8 subject long enough for three encoded words, and a UTF-8 body.
      SUBJECT = "Rechnung März ":TAG:" für Zoë Ångström, €42 ":STR("ä", 20)
      BODY = "Grüße aus Köln":SMTP.AM:"€ and ✓"
      CALL MVSMTP.OUTBOX.WRITE(OUTBOX, "msg-utf8", "billing@example.test", "ob-utf8-":TAG:"@example.test":SMTP.VM:"ob-utf8b-":TAG:"@example.test", SUBJECT, BODY, STATUS, ERRTEXT)
      CRT "CASE UTF8 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
* Rejected arguments: nothing may be left in the outbox for them.
      CALL MVSMTP.OUTBOX.WRITE(OUTBOX, "bad name;rm", "b@example.test", "x@example.test", "s", "t", STATUS, ERRTEXT)
      CRT "CASE NAME STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      CALL MVSMTP.OUTBOX.WRITE(OUTBOX, "x.tmp", "b@example.test", "x@example.test", "s", "t", STATUS, ERRTEXT)
      CRT "CASE TMPNAME STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      CALL MVSMTP.OUTBOX.WRITE(OUTBOX, "msg-001", "b@example.test", "x@example.test", "s", "t", STATUS, ERRTEXT)
      CRT "CASE EXISTS STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      CALL MVSMTP.OUTBOX.WRITE(OUTBOX, "bad-body", "b@example.test", "x@example.test", "s", "Caf":CHAR(233), STATUS, ERRTEXT)
      CRT "CASE LATIN1 STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      CALL MVSMTP.OUTBOX.WRITE(OUTBOX, "bad-subject", "b@example.test", "x@example.test", "a":CHAR(10):"Bcc: x@example.test", "t", STATUS, ERRTEXT)
      CRT "CASE SUBJECTLF STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      CALL MVSMTP.OUTBOX.WRITE(OUTBOX, "bad-to", "b@example.test", "x@example.test":CHAR(10):"Bcc: y@example.test", "s", "t", STATUS, ERRTEXT)
      CRT "CASE TOLF STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      CALL MVSMTP.OUTBOX.WRITE(OUTBOX, "bad-from", "nobody", "x@example.test", "s", "t", STATUS, ERRTEXT)
      CRT "CASE FROM STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      CALL MVSMTP.OUTBOX.WRITE(OUTBOX:"/missing", "m", "b@example.test", "x@example.test", "s", "t", STATUS, ERRTEXT)
      CRT "CASE NODIR STATUS ":STATUS:" ERRTEXT ":ERRTEXT
*
      CALL MVSMTP.OUTBOX.RUN("host=127.0.0.1":SMTP.AM:"port=2525", OUTBOX, STATUS, ERRTEXT)
      CRT "CASE RUN STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      CALL MVSMTP.OUTBOX.RUN("host=127.0.0.1":SMTP.AM:"port=2525", OUTBOX, STATUS, ERRTEXT)
      CRT "CASE RERUN STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      CALL MVSMTP.OUTBOX.RUN("host=127.0.0.1":SMTP.AM:"port=2525", OUTBOX:"/missing", STATUS, ERRTEXT)
      CRT "CASE RUNNODIR STATUS ":STATUS:" ERRTEXT ":ERRTEXT
      CALL MVSMTP.OUTBOX.RUN("host=127.0.0.1":SMTP.AM:"port=2525":SMTP.AM:"password=x", OUTBOX, STATUS, ERRTEXT)
      CRT "CASE RUNPASSWORD STATUS ":STATUS:" ERRTEXT ":ERRTEXT
   END
BASIC

for item in MVSMTP.CLI.SEND MVSMTP.SEND MVSMTP.SEND.RAW MVSMTP.SHELL MVSMTP.WRITE.FILE MVSMTP.TEST MVSMTP.CHECK MVSMTP.CHECK.SENDMAIL MVSMTP.OUTBOX.WRITE MVSMTP.OUTBOX.RUN MVSMTP.CHECK.OUTBOX; do
    if run_qm "BASIC BP $item" | grep -q "Compiled 1 program(s) with no errors"; then
        pass "BASIC BP $item compiles"
    else
        fail "BASIC BP $item does not compile:"
        run_qm "BASIC BP $item" | tail -n 5
    fi
done
for item in MVSMTP.CLI.SEND MVSMTP.SEND MVSMTP.SEND.RAW MVSMTP.SHELL MVSMTP.WRITE.FILE MVSMTP.OUTBOX.WRITE MVSMTP.OUTBOX.RUN; do
    run_qm "CATALOG BP $item LOCAL" > /dev/null
done

echo "== Sending through MVSMTP.SEND and MVSMTP.SEND.RAW"
mkdir -p "$WORK/files" "$WORK/tmp"
printf 'attached file\n' > "$WORK/files/it's a file.txt"
CHECK_TAG=$TAG CHECK_FILES="$WORK/files" MVSMTP_TOOL="$TOOL" TMPDIR="$WORK/tmp" \
    run_qm "RUN BP MVSMTP.CHECK" > "$WORK/output" 2>&1 || true
cat "$WORK/output"

expect_result 1 0 ""
expect_result 2 1 "reject@example.test"
expect_result 3 11 "reject@example.test"
expect_result 4 2 "profile"
expect_result 5 2 'Unknown option "colour"'
expect_result 6 0 ""
expect_result 7 0 ""
expect_result 8 0 ""
expect_result 9 2 "neither a path nor content"
expect_result 10 2 "/nonexistent/invoice.pdf"
expect_result 11 0 ""

if [[ -z "$(ls -A "$WORK/tmp")" ]]; then pass "no temporary directory is left"; else fail "left in TMPDIR: $(ls "$WORK/tmp")"; fi

# Case 1: every argument arrives as BASIC passed it.
if message=$(delivered "c1-$TAG@example.test"); then
    check_contains() {
        if grep -a -q -F -- "$2" <<< "$message"; then pass "case 1: $1"; else fail "case 1: $1 not found: $2"; fi
    }
    decoded=$(python3 -c 'import email, email.policy, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
print("SUBJECT", m["Subject"]); print("TO", m["To"]); print("CC", m["Cc"])
for part in m.iter_attachments(): print("ATTACHMENT", part.get_filename(), part.get_content_type(), repr(part.get_content()))
print("BODY", repr(m.get_body(("plain",)).get_content()))' <<< "$message")
    message=$decoded
    check_contains "subject" "SUBJECT It's \"quoted\" \$HOME \`id\` \$(id) ; & | > * \\ März"
    check_contains "display name with comma" 'TO "Smith, John" <c1-'
    check_contains "cc option with a value mark" "CC c1cc-$TAG@example.test, c1cc2-$TAG@example.test"
    check_contains "file attachment with quote and space" "ATTACHMENT Rechnung März.txt text/plain 'attached file\\n'"
    check_contains "attachment held in memory" "ATTACHMENT notes.txt text/plain 'memory line 1\\nmemory line 2'"
    check_contains "body lines" "BODY \"First line\\n.line with a leading dot\\nIt's \$HOME \`id\`\""
    raw=$(delivered "c1-$TAG@example.test")
    if grep -a -q -F "X-Check: it's \$HOME \`id\` \$(id) \"q\" \\ ; & | > *" <<< "$raw"; then pass "case 1: header option"; else fail "case 1: header option"; fi
else
    fail "case 1: no message delivered"
fi
delivered "c1b-$TAG@example.test" > /dev/null && pass "case 1: second recipient" || fail "case 1: second recipient"
delivered "c1cc2-$TAG@example.test" > /dev/null && pass "case 1: second cc recipient" || fail "case 1: second cc recipient"
delivered "c2-$TAG@example.test" > /dev/null && pass "case 2: accepted recipient" || fail "case 2: accepted recipient"
if message=$(delivered "c6-$TAG@example.test"); then
    if [[ "$message" == *$'Subject: raw check\n\n.dot line\nlast line'* ]]; then pass "case 6: raw message unchanged"; else fail "case 6: raw message changed"; fi
else
    fail "case 6: no message delivered"
fi
if message=$(delivered "c11-$TAG@example.test"); then
    text=$(python3 -c 'import email, email.policy, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
print(m["Subject"], m.get_content().strip())' <<< "$message")
    if [[ "$text" == "Café Crème" ]]; then pass "case 11: Latin-1 text decoded"; else fail "case 11: got $text"; fi
else
    fail "case 11: no message delivered"
fi
delivered "c7-$TAG@example.test" > /dev/null && pass "case 7: empty body delivered" || fail "case 7: empty body"
if message=$(delivered "c8-$TAG@example.test"); then
    lines=$(python3 -c 'import email, email.policy, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
lines = m.get_content().splitlines()
print(len(lines), len(set(len(line) for line in lines)), lines[-1][-4:])' <<< "$message")
    if [[ "$lines" == "3000 1 3000" ]]; then pass "case 8: all 3000 lines of 100 characters arrived"; else fail "case 8: body differs ($lines)"; fi
else
    fail "case 8: no message delivered"
fi

echo "== A tool that is missing, and one that exits with 0 without a result"
printf '#!/bin/sh\nexit 0\n' > "$WORK/silent-tool"
chmod +x "$WORK/silent-tool"
run_with_tool() {
    CHECK_TAG=$TAG CHECK_FILES="$WORK/files" MVSMTP_TOOL="$1" TMPDIR="$WORK/tmp" \
        run_qm "RUN BP MVSMTP.CHECK" > "$WORK/output" 2>&1 || true
    grep -a "^CASE 6 " "$WORK/output"
}
run_with_tool /nonexistent/mvsmtp
expect_result 6 99 "exit status 127"
run_with_tool "$WORK/silent-tool"
expect_result 6 99 "no result (exit status 0), so the message may or may not have been sent. Its output: (nothing)"

echo "== SENDMAIL through a mail link to mvsmtp"
mkdir -p "$WORK/bin"
ln -s "$TOOL" "$WORK/bin/mail"
printf '[default]\nhost = 127.0.0.1\nport = 2525\n' > "$WORK/mvsmtp.conf"
CHECK_TAG=$TAG PATH="$WORK/bin:$PATH" MVSMTP_CONFIG="$WORK/mvsmtp.conf" MVSMTP_FROM="sendmail-check@example.test" \
    run_qm "RUN BP MVSMTP.CHECK.SENDMAIL" 2>&1 | grep -a "SENDMAIL" || true
if message=$(delivered "sm-$TAG@example.test"); then
    if [[ "$message" == *"Subject: ScarletDME SENDMAIL check"* && "$message" == *$'line 1\nline 2'* ]]; then
        pass "SENDMAIL delivered subject and lines"
    else
        fail "SENDMAIL message differs"; echo "$message"
    fi
else
    fail "SENDMAIL: no message delivered"
fi

echo "== An outbox written by MVSMTP.OUTBOX.WRITE and sent by MVSMTP.OUTBOX.RUN"
mkdir -p "$WORK/outbox"
CHECK_TAG=$TAG CHECK_OUTBOX="$WORK/outbox" MVSMTP_TOOL="$TOOL" \
    run_qm "RUN BP MVSMTP.CHECK.OUTBOX" > "$WORK/output" 2>&1 || true
cat "$WORK/output"
if grep -a -q "^WRITE " "$WORK/output"; then fail "outbox: a message could not be written"; else pass "outbox: 20 messages written"; fi
expect_result UTF8 0 ""
expect_result NAME 2 "use only letters, digits"
expect_result TMPNAME 2 "ends in .tmp"
expect_result EXISTS 2 "already exists"
expect_result LATIN1 2 "not UTF-8"
expect_result SUBJECTLF 2 "Invalid SUBJECT"
expect_result TOLF 2 "Invalid TO value 1"
expect_result FROM 2 "Invalid FROM"
expect_result NODIR 74 "was not found"
expect_result RUN 65 "sent 19 message(s) (0 of them to only some recipients), moved 2 to failed/ and left 0"
expect_result RERUN 0 ""
expect_result RUNNODIR 2 "No such file or directory"
expect_result RUNPASSWORD 2 "profile"
if [[ ! -e "$WORK/outbox/missing" ]]; then pass "outbox: no directory created for a missing one"; else fail "outbox: $WORK/outbox/missing was created"; fi
left=$(find "$WORK/outbox" -maxdepth 1 -type f ! -name '.*' | wc -l)
sent=$(find "$WORK/outbox/sent" -type f | wc -l)
failed=$(ls "$WORK/outbox/failed")
if [[ "$left" -eq 0 ]]; then pass "outbox: no file left"; else fail "outbox: $left file(s) left"; fi
if [[ "$sent" -eq 19 ]]; then pass "outbox: 19 files in sent/"; else fail "outbox: $sent files in sent/"; fi
if [[ "$failed" == $'msg-005\nmsg-005.reason\nmsg-015\nmsg-015.reason' ]]; then pass "outbox: the 2 rejected in failed/"; else fail "outbox: failed/ holds $failed"; fi
for _ in $(seq 50); do
    count=$(grep -l -a -F "Subject: Outbox $TAG message " "$MAILDIR"/* 2>/dev/null | wc -l)
    [[ "$count" -ge 18 ]] && break
    sleep 0.2
done
if [[ "$count" -eq 18 ]]; then pass "outbox: 18 messages delivered"; else fail "outbox: $count messages delivered, expected 18"; fi
if message=$(delivered "ob-utf8-$TAG@example.test"); then
    text=$(python3 -c 'import email, email.policy, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
print(m["Subject"], "|", m["Message-ID"], "|", m.get_content().strip())' <<< "$message")
    expected="Rechnung März $TAG für Zoë Ångström, €42 $(printf 'ä%.0s' $(seq 20)) | <msg-utf8."
    if [[ "$text" == "$expected"*"@example.test> | Grüße aus Köln"$'\n'"€ and ✓" ]]; then pass "outbox: UTF-8 subject and body decoded"; else fail "outbox: got $text"; fi
    subject_lines=$(awk '/^$/ { exit } /^[^ \t]/ { inside = /^Subject:/ } inside' <<< "$message")
    if [[ $(wc -l <<< "$subject_lines") -gt 1 && -z $(awk 'length($0) > 76' <<< "$subject_lines") ]]; then
        pass "outbox: UTF-8 subject folded into encoded words of at most 75 characters"
    else
        fail "outbox: subject lines: $subject_lines"
    fi
else
    fail "outbox: UTF-8 message not delivered"
fi

echo "== General syntax of the other platforms' BASIC"
# ScarletDME cannot run these, but it compiles them once each platform-specific call is
# replaced by an assignment: CALLC, DEFCE and its functions, D3's %functions, BYTELEN and
# LATIN1 of jBASE, PyCallFunction and @PYEXCEPTION*, and IRIS's "class"->method calls.
if [[ ! -d "$ACCOUNT/STUBS" ]]; then
    run_qm "CREATE.FILE STUBS DIRECTORY" > /dev/null
fi
cp "$REPOSITORY/mvbasic/common/MVSMTP.H" "$ACCOUNT/STUBS/"
for source in "$REPOSITORY"/mvbasic/{universe,unidata,jbase,d3,u2python,iris}/MVSMTP.*; do
    [[ "$source" == *.cls ]] && continue
    item="$(basename "$(dirname "$source")").$(basename "$source")"
    sed -E -e 's/^( *)SUBROUTINE MVSMTP\.[A-Z.]+\(/\1SUBROUTINE STUB(/' \
        -e 's/%smtp_[a-z_]+\(.*\)$/0/' \
        -e 's/CALLC smtp_last_error_text\(\)/""/' -e 's/CALLC smtp_[a-z_]+\([^)]*\)/0/' \
        -e '/^ *DEFCE /d' -e 's/smtp_send_(message|with)\([^)]*\)/0/' \
        -e 's/smtp_(open|close|session_send|session_send_message)\([^)]*\)/0/' \
        -e 's/mvsmtp_jbase_error_length\(\)/0/' -e 's/mvsmtp_jbase_error_byte\([^)]*\)/65/' \
        -e 's/BYTELEN\(CHAR\(200\)\)/1/' -e 's/LATIN1\(ERRTEXT\)/ERRTEXT/' \
        -e 's/PyCallFunction\(.*\)$/"0 "/' -e 's/@PYEXCEPTION(TYPE|MSG)/""/g' \
        -e 's/"MVSMTP\.Shell"->[A-Za-z]+\(.*\)$/""/' "$source" > "$ACCOUNT/STUBS/$item"
    if run_qm "BASIC STUBS $item" | grep -q "Compiled 1 program(s) with no errors"; then
        pass "$item compiles with its platform calls replaced"
    else
        fail "$item does not compile with its platform calls replaced:"
        run_qm "BASIC STUBS $item" | tail -n 5
    fi
done

echo
if [[ $FAILURES -eq 0 ]]; then echo "All checks passed."; else echo "$FAILURES check(s) failed."; exit 1; fi
