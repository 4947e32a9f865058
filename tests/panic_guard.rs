//! A panic inside a C entry point must come back as SMTP_INTERNAL_ERROR, never unwind into
//! the caller or abort the process, and the next call must work. The panic is forced
//! through the test-only `fault-injection` feature:
//! `cargo test --features fault-injection --test panic_guard`.

#![cfg(feature = "fault-injection")]

mod common;

use mvsmtp::ffi::status::*;

#[test]
fn forced_panic_becomes_internal_error() {
    let status = common::set_option("test_panic", "1");
    assert_eq!(status, SMTP_INTERNAL_ERROR);
    let outcome = common::collect(status);
    assert!(outcome.error.contains("forced panic for testing"), "{}", outcome.error);
    assert!(outcome.error.starts_with("Internal error in libmvsmtp"), "{}", outcome.error);
}

#[test]
fn calls_after_panic_work() {
    assert_eq!(common::set_option("test_panic", "1"), SMTP_INTERNAL_ERROR);
    assert_eq!(common::set_option("timeout", "30"), SMTP_OK);
    assert_eq!(common::collect(SMTP_OK).error, "");

    let server = common::postfix();
    let recipient = common::unique_address("after-panic");
    let outcome = common::send(&server.host, server.port, "a@example.test", recipient.as_bytes(), b"Subject: after\r\n\r\nstill works\r\n");
    assert_eq!(outcome.status, SMTP_OK, "{}", outcome.error);
    server.delivered(&recipient);
}

#[test]
fn panics_on_many_threads_contained() {
    let handles: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..50 {
                    assert_eq!(common::set_option("test_panic", "1"), SMTP_INTERNAL_ERROR);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("no panic escapes the guard");
    }
}
