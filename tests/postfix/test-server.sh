#!/usr/bin/env bash
# Throwaway Postfix mail server on 127.0.0.1 for the libmvsmtp tests.
#
# Usage: test-server.sh [up|install|configure|start|stop|status|reset]
#   up         install + configure + start (the default). Safe to run again while Postfix runs.
#   install    install the Debian packages that are missing (postfix, sasl2-bin, libsasl2-modules, openssl)
#   configure  write the Postfix configuration, certificates, SASL database and maildir
#   start      start Postfix, or reload it when it already runs, and wait for the listeners
#   stop       stop Postfix
#   status     show whether Postfix runs and which test ports accept connections
#   reset      delete every delivered message from the maildir
#
# Every command except reset needs root. This script replaces /etc/postfix/main.cf and
# master.cf, so it refuses to run on a machine whose main.cf it did not write.
# It never uses systemd and works where PID 1 is not systemd (containers, CI runners).
# Written for Debian 12 (Postfix 3.7).
#
# Listeners, all on 127.0.0.1 only:
#   2525  plain SMTP. STARTTLS and AUTH are offered but not required.
#   2587  submission. STARTTLS is required before MAIL, AUTH is offered after STARTTLS and required.
#   4465  implicit TLS (the client starts TLS right after connecting). AUTH is required.
#
# Delivery: every accepted recipient of any domain gets one file in $STATE/maildir/new/,
# with mode 0600 and owned by MAIL_UID. Postfix puts Return-Path, X-Original-To, Delivered-To
# and Received above the client's bytes, stores LF line endings and undoes dot-stuffing.
# RCPT TO reject@<any domain> gets "550 5.1.1" and tempfail@<any domain> gets "450 4.2.0".
#
# Environment (defaults in brackets):
#   STATE      directory for the maildir, certificates, SASL database and log [/tmp/mvsmtp-postfix]
#   MAIL_UID   owner of the delivered files [the user who ran sudo, or the caller when not root, else 65534]
#   MAIL_GID   group of the delivered files [the group that goes with MAIL_UID]
#   SMTP_USER  SASL user name [testuser]
#   SMTP_PASS  SASL password [testpass]
set -euo pipefail

STATE=${STATE:-/tmp/mvsmtp-postfix}
MAILDIR=$STATE/maildir
LOG_FILE=$STATE/postfix.log
CA_FILE=$STATE/ca.crt

DOMAIN=example.test
SMTP_USER=${SMTP_USER:-testuser}
SMTP_PASS=${SMTP_PASS:-testpass}

PORT_SMTP=2525
PORT_SUBMISSION=2587
PORT_SMTPS=4465

# Large enough for attachment tests. Postfix's line_length_limit keeps its default of 2048,
# because smtpd splits longer lines into queue records and delivery joins them again.
MESSAGE_SIZE_LIMIT=$((100 * 1024 * 1024))

POSTFIX_DIR=/etc/postfix
PACKAGES=(postfix sasl2-bin libsasl2-modules openssl)

# First line of every main.cf this script writes. Its presence means main.cf may be replaced.
CONFIG_MARKER="# Written by libmvsmtp tests/postfix/test-server.sh"

fail() {
    echo "test-server.sh: $*" >&2
    exit 1
}

require_root() {
    [ "$(id -u)" -eq 0 ] || fail "'$1' needs root; run: sudo bash $0 $1"
}

# Postfix's virtual delivery agent rejects uid 0, so root falls back to "nobody" (65534).
choose_mail_owner() {
    local default_uid default_gid

    if [ -n "${SUDO_UID:-}" ] && [ "$SUDO_UID" != 0 ]; then
        default_uid=$SUDO_UID
        default_gid=${SUDO_GID:-$SUDO_UID}
    elif [ "$(id -u)" -ne 0 ]; then
        default_uid=$(id -u)
        default_gid=$(id -g)
    else
        default_uid=65534
        default_gid=65534
    fi

    case "${MAIL_UID:-0}${MAIL_GID:-0}" in
        *[!0-9]*) fail "MAIL_UID and MAIL_GID must be numeric ids, got '${MAIL_UID:-}' and '${MAIL_GID:-}'" ;;
    esac

    if [ -n "${MAIL_UID:-}" ] && [ -z "${MAIL_GID:-}" ] && [ "$MAIL_UID" != "$default_uid" ]; then
        # An explicit MAIL_UID without MAIL_GID gets that user's primary group, or the
        # group with the same number when no user has that uid.
        default_gid=$(getent passwd "$MAIL_UID" | cut -d: -f4 || true)
        default_gid=${default_gid:-$MAIL_UID}
    fi

    MAIL_UID=${MAIL_UID:-$default_uid}
    MAIL_GID=${MAIL_GID:-$default_gid}
    [ "$MAIL_UID" -ne 0 ] || fail "MAIL_UID must not be 0 because Postfix refuses to deliver virtual mail as root"
}

install_packages() {
    local package missing=()

    for package in "${PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" != installed ]; then
            missing+=("$package")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0

    echo "Installing ${missing[*]}"

    # "No configuration" makes the postfix package ask nothing and write no main.cf.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Fails unless main.cf is missing or was written by this script, so that the configuration
# of a real mail server is never replaced.
check_main_cf_is_ours() {
    local main_cf=$POSTFIX_DIR/main.cf

    [ -e "$main_cf" ] || return 0
    [ "$(head -n 1 "$main_cf")" = "$CONFIG_MARKER" ] && return 0
    fail "$main_cf was not written by this script and would be replaced. Move it away first if this machine's Postfix is only for tests."
}

# The state directory sits in /tmp, which every user can write, so a directory that root
# does not own (or a symbolic link) could redirect the files that root writes here.
prepare_state_dir() {
    if [ -L "$STATE" ] || { [ -e "$STATE" ] && [ "$(stat -c %u "$STATE")" != 0 ]; }; then
        fail "$STATE must be a directory owned by root; remove it and run again"
    fi
    mkdir -p "$STATE"
    chmod 755 "$STATE"

    # Postfix creates new/ cur/ tmp/ itself on the first delivery, but tests poll new/ before that.
    mkdir -p "$MAILDIR/new" "$MAILDIR/cur" "$MAILDIR/tmp"
    chown -R "$MAIL_UID:$MAIL_GID" "$MAILDIR"
    chmod 755 "$MAILDIR" "$MAILDIR/new" "$MAILDIR/cur" "$MAILDIR/tmp"
}

# Creates a private CA and a server certificate for localhost and 127.0.0.1 signed by it.
# The server certificate is a separate leaf with CA:FALSE, because rustls (webpki) rejects
# a certificate that is both the CA and the server certificate.
create_certificates() {
    [ -s "$STATE/server.crt" ] && [ -s "$STATE/server.key" ] && [ -s "$CA_FILE" ] && return 0

    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=libmvsmtp test CA" \
        -keyout "$STATE/ca.key" -out "$CA_FILE" 2>/dev/null

    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$STATE/server.key" -out "$STATE/server.csr" 2>/dev/null

    cat > "$STATE/server.ext" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
EOF
    openssl x509 -req -in "$STATE/server.csr" -CA "$CA_FILE" -CAkey "$STATE/ca.key" -CAcreateserial \
        -days 3650 -extfile "$STATE/server.ext" -out "$STATE/server.crt" 2>/dev/null

    # smtpd reads the key as root before it drops privileges.
    chmod 600 "$STATE/ca.key" "$STATE/server.key"
    chmod 644 "$CA_FILE" "$STATE/server.crt"
}

# Cyrus SASL with a sasldb file offers PLAIN, LOGIN and CRAM-MD5 without a separate daemon.
configure_sasl() {
    printf '%s' "$SMTP_PASS" | saslpasswd2 -p -c -f "$STATE/sasldb2" -u "$DOMAIN" "$SMTP_USER"

    # smtpd runs as user postfix and must read the database.
    chown root:postfix "$STATE/sasldb2"
    chmod 640 "$STATE/sasldb2"

    mkdir -p "$POSTFIX_DIR/sasl"
    cat > "$POSTFIX_DIR/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $STATE/sasldb2
mech_list: PLAIN LOGIN CRAM-MD5
EOF
}

write_access_tables() {
    cat > "$POSTFIX_DIR/mvsmtp_recipient_access" <<'EOF'
/^reject@/    550 5.1.1 Recipient address rejected by the test server
/^tempfail@/  450 4.2.0 Recipient address temporarily rejected by the test server
EOF

    # Matches every client. A sender restriction list that reaches this table rejects MAIL
    # with 530, because permit_sasl_authenticated comes first in that list.
    cat > "$POSTFIX_DIR/mvsmtp_auth_required" <<'EOF'
/./  530 5.7.0 Authentication required
EOF
}

write_main_cf() {
    cat > "$POSTFIX_DIR/main.cf" <<EOF
$CONFIG_MARKER
# Throwaway test server that listens on 127.0.0.1 only and relays nothing.
compatibility_level = 3.6
myhostname = mail.$DOMAIN
mydomain = $DOMAIN
myorigin = $DOMAIN
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
readme_directory = no
smtpd_banner = \$myhostname ESMTP Postfix (libmvsmtp test server)

# Limits. A size limit of 0 means unlimited.
message_size_limit = $MESSAGE_SIZE_LIMIT
mailbox_size_limit = 0
virtual_mailbox_limit = 0

# No DNS lookups, because the client is always 127.0.0.1 and no mail leaves this machine.
smtpd_peername_lookup = no
smtp_dns_support_level = disabled

# Postfix writes its own log file through postlogd, so no syslog daemon is needed.
maillog_file = $LOG_FILE
maillog_file_prefixes = /var, /dev/stdout, $STATE

# An empty list keeps the client's header bytes as sent. With the default
# (permit_inet_interfaces), cleanup would add missing Date, Message-ID and From headers and
# rewrite header addresses for clients on 127.0.0.1.
local_header_rewrite_clients =

# Catch-all delivery. Every domain is a virtual mailbox domain and every address shares one maildir.
virtual_mailbox_domains = static:all
virtual_mailbox_maps = static:maildir/
virtual_mailbox_base = $STATE
virtual_uid_maps = static:$MAIL_UID
virtual_gid_maps = static:$MAIL_GID
virtual_minimum_uid = 1

# TLS on the server side. "may" offers STARTTLS without requiring it.
smtpd_tls_cert_file = $STATE/server.crt
smtpd_tls_key_file = $STATE/server.key
smtpd_tls_security_level = may
smtpd_tls_auth_only = no
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes

# SASL through Cyrus, configured in $POSTFIX_DIR/sasl/smtpd.conf.
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $POSTFIX_DIR/sasl
smtpd_sasl_local_domain = $DOMAIN
smtpd_sasl_security_options = noanonymous
smtpd_sasl_authenticated_header = yes

smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access regexp:$POSTFIX_DIR/mvsmtp_recipient_access
EOF
}

# Every service has chroot "n", because Debian's chroot needs copies of /etc files in the
# queue directory, which only its systemd unit prepares.
write_master_cf() {
    local require_auth="permit_sasl_authenticated,check_client_access,regexp:$POSTFIX_DIR/mvsmtp_auth_required"

    cat > "$POSTFIX_DIR/master.cf" <<EOF
# Written by libmvsmtp tests/postfix/test-server.sh
# service  type  private unpriv chroot wakeup maxproc command + args
127.0.0.1:$PORT_SMTP inet n - n - - smtpd
127.0.0.1:$PORT_SUBMISSION inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_delay_reject=no
  -o smtpd_sender_restrictions=$require_auth
127.0.0.1:$PORT_SMTPS inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_delay_reject=no
  -o smtpd_sender_restrictions=$require_auth
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - n -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
local      unix  - n n -     - local
virtual    unix  - n n -     - virtual
lmtp       unix  - - n -     - lmtp
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
}

configure() {
    choose_mail_owner
    check_main_cf_is_ours
    prepare_state_dir
    create_certificates
    configure_sasl
    write_access_tables
    write_main_cf
    write_master_cf
    postfix check
}

postfix_running() {
    postfix status >/dev/null 2>&1
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for_port() {
    for _ in $(seq 100); do
        port_open "$1" && return 0
        sleep 0.1
    done
    fail "nothing listens on 127.0.0.1:$1 after 10 seconds; see $LOG_FILE"
}

start() {
    # A reload makes a running Postfix read main.cf and master.cf again, and reopen its log.
    if postfix_running; then
        postfix reload
    else
        postfix start
    fi

    wait_for_port "$PORT_SMTP"
    wait_for_port "$PORT_SUBMISSION"
    wait_for_port "$PORT_SMTPS"
}

stop() {
    local master_pid

    postfix_running || { echo "Postfix is not running"; return 0; }

    master_pid=$(tr -d ' ' 2>/dev/null < /var/spool/postfix/pid/master.pid || true)
    postfix stop

    # "postfix stop" returns before the master process has exited.
    for _ in $(seq 100); do
        { [ -n "$master_pid" ] && kill -0 "$master_pid" 2>/dev/null; } || return 0
        sleep 0.1
    done
    fail "Postfix master process $master_pid still runs 10 seconds after 'postfix stop'"
}

status() {
    local port

    if postfix_running; then
        echo "Postfix is running"
    else
        echo "Postfix is not running"
    fi
    for port in "$PORT_SMTP" "$PORT_SUBMISSION" "$PORT_SMTPS"; do
        if port_open "$port"; then
            echo "127.0.0.1:$port accepts connections"
        else
            echo "127.0.0.1:$port does not accept connections"
        fi
    done
    postfix_running
}

reset_maildir() {
    local subdir

    for subdir in new cur tmp; do
        if [ -d "$MAILDIR/$subdir" ]; then
            find "$MAILDIR/$subdir" -mindepth 1 -delete
        fi
    done
    echo "Emptied $MAILDIR"
}

print_summary() {
    cat <<EOF

Postfix test server is running:
  127.0.0.1:$PORT_SMTP  plain SMTP, STARTTLS and AUTH optional
  127.0.0.1:$PORT_SUBMISSION  STARTTLS and AUTH required
  127.0.0.1:$PORT_SMTPS  implicit TLS, AUTH required
  SASL login   $SMTP_USER / $SMTP_PASS (PLAIN, LOGIN, CRAM-MD5)
  CA file      $CA_FILE
  maildir      $MAILDIR/new/ (owner $(stat -c %u:%g "$MAILDIR"))
  log          $LOG_FILE
  test RCPTs   reject@<any> -> 550 5.1.1, tempfail@<any> -> 450 4.2.0
EOF
}

command=${1:-up}
case "$command" in
    up)
        require_root up
        install_packages
        configure
        start
        print_summary
        ;;
    install)
        require_root install
        install_packages
        ;;
    configure)
        require_root configure
        configure
        ;;
    start)
        require_root start
        start
        print_summary
        ;;
    stop)
        require_root stop
        stop
        ;;
    status)
        require_root status
        status
        ;;
    reset)
        reset_maildir
        ;;
    *)
        echo "usage: $0 [up|install|configure|start|stop|status|reset]" >&2
        exit 2
        ;;
esac
