// Local SMTP server for the libmvsmtp tests of AUTH XOAUTH2 and AUTH LOGIN.
//
// Postfix with Cyrus SASL has no XOAUTH2, so this server uses the smtp-server package
// instead. Its EHLO reply lists "AUTH LOGIN XOAUTH2", every session must authenticate
// before MAIL, and AUTH is accepted only over TLS (STARTTLS, or implicit TLS with --secure).
//
// Usage:
//   node tests/xoauth2/server.mjs --port N --cert CERT --key KEY --maildir DIR [--secure] [--verbose]
//
// The server listens on 127.0.0.1 only and never opens a connection of its own. Once it
// accepts connections it prints "listening 127.0.0.1:PORT" on stdout, which also gives
// the port that the system chose for --port 0. All other output goes to stderr.
//
// It stops on SIGTERM, on SIGINT and when its stdin reaches end of file, so a test that
// spawns it with a pipe on stdin never leaves it running. Keep stdin open: started with
// stdin at /dev/null, the server stops at once.

import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format, parseArgs } from 'node:util';

import { SMTPServer } from 'smtp-server';

const LISTEN_HOST = '127.0.0.1';

// Sessions still open at shutdown get "421 Server shutting down" after this many milliseconds.
const CLOSE_TIMEOUT_MS = 1000;

const XOAUTH2_USER = 'oauth-user@example.test';
const XOAUTH2_ACCESS_TOKEN = 'good-token-123';

const LOGIN_USER = 'login-user@example.test';
const LOGIN_PASSWORD = 'login-pass';

// Error details sent base64-encoded in the 334 reply to a rejected XOAUTH2 token. The
// fields follow Gmail's XOAUTH2 description (developers.google.com/gmail/imap/xoauth2-protocol),
// and the client is expected to send an empty line, which gets the final 535 reply.
const XOAUTH2_ERROR_DETAILS = {
    status: '401',
    schemes: 'bearer',
    scope: 'https://mail.example.test/'
};

const USAGE =
    'Usage: node tests/xoauth2/server.mjs --port N --cert CERT --key KEY --maildir DIR [--secure] [--verbose]\n' +
    '  --port N       TCP port on 127.0.0.1, 0 to let the system choose one\n' +
    '  --cert CERT    PEM file with the server certificate (and any intermediate certificates)\n' +
    '  --key KEY      PEM file with the private key of the certificate\n' +
    '  --maildir DIR  directory for the received messages, created if missing\n' +
    '  --secure       implicit TLS from the first byte; without it the server speaks plain SMTP and offers STARTTLS\n' +
    '  --verbose      also write the log of the smtp-server package, including the SMTP commands, to stderr\n';

// Prefixes every line, including the later lines of a multiline SMTP reply in the --verbose log.
function log(...args) {
    const lines = format(...args).split(/\r?\n/);
    process.stderr.write(lines.map(line => `xoauth2 test server: ${line}\n`).join(''));
}

function exitWithUsageError(message) {
    process.stderr.write(`${message}\n${USAGE}`);
    process.exit(2);
}

function parseCommandLine() {
    let parsed;
    try {
        parsed = parseArgs({
            options: {
                port: { type: 'string' },
                cert: { type: 'string' },
                key: { type: 'string' },
                maildir: { type: 'string' },
                secure: { type: 'boolean', default: false },
                verbose: { type: 'boolean', default: false },
                help: { type: 'boolean', default: false }
            },
            strict: true,
            allowPositionals: false
        });
    } catch (error) {
        exitWithUsageError(error.message);
    }

    const options = parsed.values;
    if (options.help) {
        process.stdout.write(USAGE);
        process.exit(0);
    }

    for (const name of ['port', 'cert', 'key', 'maildir']) {
        if (options[name] === undefined || options[name] === '') {
            exitWithUsageError(`Missing option --${name}.`);
        }
    }

    if (!/^\d{1,5}$/.test(options.port) || Number(options.port) > 65535) {
        exitWithUsageError(`Invalid --port "${options.port}": expected a whole number from 0 to 65535.`);
    }

    return {
        port: Number(options.port),
        certFile: options.cert,
        keyFile: options.key,
        maildir: options.maildir,
        secure: options.secure,
        verbose: options.verbose
    };
}

function readPemFile(path, optionName) {
    try {
        return readFileSync(path);
    } catch (error) {
        exitWithUsageError(`Failed to read the ${optionName} file ${path}: ${error.message}`);
    }
}

// Adapts the bunyan-style calls of smtp-server (fields object, format string, arguments) to stderr lines.
function createStderrLogger() {
    const logger = {};
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal']) {
        logger[level] = (_fields, message, ...args) => log('[%s] %s', level, format(message, ...args));
    }
    return logger;
}

function authenticateXoauth2(auth, callback) {
    if (auth.username === XOAUTH2_USER && auth.accessToken === XOAUTH2_ACCESS_TOKEN) {
        log('AUTH XOAUTH2 accepted for %s', auth.username);
        return callback(null, { user: auth.username });
    }

    // In smtp-server 3.21.6, a response without "user" and with "data" makes it send
    // "334 <base64 JSON>", wait for the client's next line and then reply 535. Passing an
    // Error to the callback would skip the 334 challenge and reply 535 at once.
    log('AUTH XOAUTH2 rejected for %s: unknown user or access token', auth.username);
    return callback(null, { data: XOAUTH2_ERROR_DETAILS });
}

function authenticateLogin(auth, callback) {
    if (auth.username === LOGIN_USER && auth.password === LOGIN_PASSWORD) {
        log('AUTH LOGIN accepted for %s', auth.username);
        return callback(null, { user: auth.username });
    }

    log('AUTH LOGIN rejected for %s: unknown user or wrong password', auth.username);
    const error = new Error('Authentication credentials invalid');
    error.responseCode = 535;
    return callback(error);
}

function handleAuth(auth, session, callback) {
    if (auth.method === 'XOAUTH2') {
        return authenticateXoauth2(auth, callback);
    }
    if (auth.method === 'LOGIN') {
        return authenticateLogin(auth, callback);
    }

    // smtp-server only calls onAuth for the mechanisms in authMethods, so this is a guard.
    const error = new Error(`Unsupported authentication mechanism ${auth.method}`);
    error.responseCode = 504;
    return callback(error);
}

// Builds the first line of a stored message, for example
// "X-Test-Envelope: from=<a@example.test> to=<b@example.test>,<c@example.test> user=oauth-user@example.test secure=true".
function formatEnvelopeLine(session) {
    const sender = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const recipients = session.envelope.rcptTo.map(recipient => `<${recipient.address}>`).join(',');
    const user = session.user === undefined ? '' : session.user;
    return `X-Test-Envelope: from=<${sender}> to=${recipients} user=${user} secure=${session.secure ? 'true' : 'false'}\r\n`;
}

function createMessageStore(maildir) {
    mkdirSync(maildir, { recursive: true });
    let messageCount = 0;

    // Writes under a temporary name first, so a test that polls the directory for *.eml
    // never reads a message that is only half written. linkSync fails with EEXIST instead
    // of replacing a file, which matters when two servers share one directory.
    return function storeMessage(session, messageBytes) {
        const temporaryPath = join(maildir, `.${process.pid}-${Date.now()}.tmp`);
        writeFileSync(temporaryPath, Buffer.concat([Buffer.from(formatEnvelopeLine(session)), messageBytes]));

        try {
            for (;;) {
                messageCount += 1;
                const finalPath = join(maildir, `${Date.now()}-${messageCount}.eml`);
                try {
                    linkSync(temporaryPath, finalPath);
                    return finalPath;
                } catch (error) {
                    if (error.code !== 'EEXIST') {
                        throw error;
                    }
                }
            }
        } finally {
            unlinkSync(temporaryPath);
        }
    };
}

function createDataHandler(storeMessage) {
    return function handleData(stream, session, callback) {
        const chunks = [];
        stream.on('data', chunk => chunks.push(chunk));
        stream.on('error', error => {
            log('Reading the message data of session %s failed: %s', session.id, error.message);
            callback(error);
        });
        stream.on('end', () => {
            let path;
            try {
                path = storeMessage(session, Buffer.concat(chunks));
            } catch (error) {
                log('Storing the message of session %s failed: %s', session.id, error.message);
                const storeError = new Error('Error: could not store the message');
                storeError.responseCode = 451;
                return callback(storeError);
            }
            log('Stored a message from <%s> for %d recipient(s) in %s', session.envelope.mailFrom.address, session.envelope.rcptTo.length, path);
            callback(null, 'OK: message stored');
        });
    };
}

function main() {
    const config = parseCommandLine();
    const cert = readPemFile(config.certFile, '--cert');
    const key = readPemFile(config.keyFile, '--key');

    let storeMessage;
    try {
        storeMessage = createMessageStore(config.maildir);
    } catch (error) {
        exitWithUsageError(`Failed to create the --maildir directory ${config.maildir}: ${error.message}`);
    }

    const server = new SMTPServer({
        secure: config.secure,
        key,
        cert,
        name: 'localhost',
        authMethods: ['LOGIN', 'XOAUTH2'],
        authOptional: false,
        allowInsecureAuth: false,
        // A reverse DNS lookup of the client would be the server's only outgoing request.
        disableReverseLookup: true,
        closeTimeout: CLOSE_TIMEOUT_MS,
        logger: config.verbose ? createStderrLogger() : false,
        onAuth: handleAuth,
        onData: createDataHandler(storeMessage)
    });

    let listening = false;

    // Before listening, an error (such as EADDRINUSE) is fatal. Afterwards the errors come
    // from single sessions, for example a client that aborts the TLS handshake, and the
    // server keeps running.
    server.on('error', error => {
        if (!listening) {
            log('Failed to listen on %s:%d: %s', LISTEN_HOST, config.port, error.message);
            process.exit(1);
        }
        log('Session error: %s', error.message);
    });

    let stopping = false;
    const stop = reason => {
        if (stopping) {
            return;
        }
        stopping = true;
        log('Stopping (%s)', reason);
        server.close(() => process.exit(0));
    };

    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.stdin.on('end', () => stop('stdin closed'));
    process.stdin.on('error', () => stop('stdin closed'));
    process.stdin.resume();

    server.listen(config.port, LISTEN_HOST, () => {
        listening = true;
        const address = server.server.address();
        process.stdout.write(`listening ${address.address}:${address.port}\n`);
        log('Listening on %s:%d with %s, storing messages in %s', address.address, address.port, config.secure ? 'implicit TLS' : 'plain SMTP and STARTTLS', config.maildir);
    });
}

main();
