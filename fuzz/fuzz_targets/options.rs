//! Applies arbitrary bytes as an options list and as a configuration file: errors are fine,
//! panics are not, and a password never appears in an error message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mvsmtp::options::Options;
use mvsmtp::profile::parse_config;

const SECRET: &[u8] = b"Sekr1t-Fuzz";

fuzz_target!(|data: &[u8]| {
    let mut options = Options::default();
    if let Err(error) = options.apply_list(data) {
        let _ = error.to_string();
    }

    // The secret may appear in a message only where the input itself repeats it outside
    // the password's value, for example as an option name, which messages do echo.
    let mut list = b"password=Sekr1t-Fuzz\n".to_vec();
    list.extend_from_slice(data);
    let repeated = data.windows(SECRET.len()).any(|window| window == SECRET);
    if let Err(error) = Options::default().apply_list(&list) {
        assert!(repeated || !error.to_string().contains("Sekr1t-Fuzz"), "{error}");
    }

    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_config(text, std::path::Path::new("fuzz.conf"));
    }
});
