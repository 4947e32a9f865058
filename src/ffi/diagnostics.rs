//! The calling thread's record of its most recent call: the status's error text, the
//! deciding reply code and the transcript. Each thread has its own, so threads that send at
//! the same time never see each other's results.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};

use crate::error::Error;

#[derive(Default)]
struct LastCall {
    reply_code: c_int,
    error: CString,
    transcript: CString,
}

thread_local! {
    static LAST_CALL: RefCell<LastCall> = RefCell::new(LastCall::default());
}

/// Records a successful call: no error text.
pub fn record_success(reply_code: u16, transcript: &str) {
    store(c_int::from(reply_code), "", transcript);
}

/// Records a failed call with its error.
pub fn record_error(error: &Error, reply_code: u16, transcript: &str) {
    store(c_int::from(reply_code), &error.to_string(), transcript);
}

/// Records a call that ended with a message but no engine error, such as a partial delivery.
pub fn record_message(message: &str, reply_code: u16, transcript: &str) {
    store(c_int::from(reply_code), message, transcript);
}

fn store(reply_code: c_int, error: &str, transcript: &str) {
    LAST_CALL.with(|cell| {
        let mut last = cell.borrow_mut();
        last.reply_code = reply_code;
        last.error = to_c_string(error);
        last.transcript = to_c_string(transcript);
    });
}

/// Converts text for C. Every writer escapes control characters already, so a NUL here
/// would be a bug; it is replaced rather than allowed to cut the text short.
fn to_c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

pub fn last_reply_code() -> c_int {
    LAST_CALL.with(|cell| cell.borrow().reply_code)
}

pub fn last_error() -> String {
    LAST_CALL.with(|cell| cell.borrow().error.to_string_lossy().into_owned())
}

pub fn last_transcript() -> String {
    LAST_CALL.with(|cell| cell.borrow().transcript.to_string_lossy().into_owned())
}

/// Returns a pointer to the last error text, valid until the thread's next call that
/// records a result.
pub fn last_error_ptr() -> *const c_char {
    LAST_CALL.with(|cell| cell.borrow().error.as_ptr())
}

/// Returns a pointer to the last transcript, valid like [`last_error_ptr`].
pub fn last_transcript_ptr() -> *const c_char {
    LAST_CALL.with(|cell| cell.borrow().transcript.as_ptr())
}

/// Copies the last error into a caller buffer; see [`copy_to_buffer`].
///
/// # Safety
/// `buffer` must be NULL or point to at least `size` writable bytes.
pub unsafe fn copy_last_error(buffer: *mut c_char, size: c_int) -> c_int {
    LAST_CALL.with(|cell| copy_to_buffer(cell.borrow().error.as_bytes(), buffer, size))
}

/// Copies the last transcript into a caller buffer; see [`copy_to_buffer`].
///
/// # Safety
/// `buffer` must be NULL or point to at least `size` writable bytes.
pub unsafe fn copy_last_transcript(buffer: *mut c_char, size: c_int) -> c_int {
    LAST_CALL.with(|cell| copy_to_buffer(cell.borrow().transcript.as_bytes(), buffer, size))
}

/// Copies as much of `text` as fits into `buffer`, NUL-terminated, without splitting a UTF-8
/// character, and returns the full length of `text` without the NUL. With a NULL buffer or a
/// size below 1 nothing is written, so a caller can ask for the length first.
///
/// # Safety
/// `buffer` must be NULL or point to at least `size` writable bytes.
unsafe fn copy_to_buffer(text: &[u8], buffer: *mut c_char, size: c_int) -> c_int {
    let full_length = c_int::try_from(text.len()).unwrap_or(c_int::MAX);
    if buffer.is_null() || size < 1 {
        return full_length;
    }

    let capacity = usize::try_from(size).unwrap_or(0) - 1;
    let mut count = text.len().min(capacity);
    while count > 0 && count < text.len() && (text[count] & 0xC0) == 0x80 {
        // text[count] continues a UTF-8 character, so cutting here would split it.
        count -= 1;
    }

    // SAFETY: the caller guarantees `size` writable bytes, and count + 1 <= size.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buffer.cast::<u8>(), count);
        *buffer.add(count) = 0;
    }
    full_length
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(text: &str, size: usize) -> (c_int, Vec<u8>) {
        let mut buffer = vec![0x55u8; size.max(1)];
        let length = unsafe { copy_to_buffer(text.as_bytes(), buffer.as_mut_ptr().cast(), size as c_int) };
        (length, buffer)
    }

    #[test]
    fn copy_fits() {
        let (length, buffer) = copy("hello", 10);
        assert_eq!(length, 5);
        assert_eq!(&buffer[..6], b"hello\0");
    }

    #[test]
    fn copy_cut_to_fit() {
        let (length, buffer) = copy("hello", 3);
        assert_eq!(length, 5);
        assert_eq!(&buffer[..3], b"he\0");
    }

    #[test]
    fn copy_never_splits_character() {
        // "é" is two bytes; a 3-byte buffer holds "a" and the NUL, not half of "é".
        let (length, buffer) = copy("aé", 3);
        assert_eq!(length, 3);
        assert_eq!(&buffer[..2], b"a\0");
    }

    #[test]
    fn copy_size_one_writes_nul() {
        let (length, buffer) = copy("hello", 1);
        assert_eq!(length, 5);
        assert_eq!(buffer[0], 0);
    }

    #[test]
    fn null_buffer_returns_length() {
        let length = unsafe { copy_to_buffer(b"hello", std::ptr::null_mut(), 100) };
        assert_eq!(length, 5);
        let mut byte = 0x55u8;
        let length = unsafe { copy_to_buffer(b"hello", (&mut byte as *mut u8).cast(), 0) };
        assert_eq!(length, 5);
        assert_eq!(byte, 0x55);
        let length = unsafe { copy_to_buffer(b"hello", (&mut byte as *mut u8).cast(), -4) };
        assert_eq!(length, 5);
        assert_eq!(byte, 0x55);
    }

    #[test]
    fn threads_keep_own_records() {
        record_message("main thread", 250, "");
        std::thread::spawn(|| {
            record_message("other thread", 550, "");
            assert_eq!(last_error(), "other thread");
        })
        .join()
        .unwrap();
        assert_eq!(last_error(), "main thread");
        assert_eq!(last_reply_code(), 250);
    }
}
