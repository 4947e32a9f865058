//! Generates the C header `include/mvsmtp.h` from the `extern "C"` functions and status
//! constants in `src/ffi/`, using the settings in `cbindgen.toml`.
//!
//! The header is committed, so C and BASIC users need no Rust toolchain to read it. A test
//! fails when the committed copy differs from what this build generates.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml is readable and valid");

    let bindings = match cbindgen::Builder::new().with_crate(&crate_dir).with_config(config).generate() {
        Ok(bindings) => bindings,
        Err(error) => {
            // A syntax error in src/ is reported by rustc with a better message; the header
            // is regenerated on the next successful build.
            println!("cargo:warning=cbindgen could not generate include/mvsmtp.h: {error}");
            return;
        }
    };

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let generated = out_dir.join("mvsmtp.h");
    bindings.write_to_file(&generated);
    println!("cargo:rustc-env=MVSMTP_GENERATED_HEADER={}", generated.display());

    // Write the committed copy only when it changed, so that builds do not touch its time stamp.
    let header = crate_dir.join("include").join("mvsmtp.h");
    let fresh = fs::read(&generated).expect("the generated header is readable");
    if fs::read(&header).ok().as_deref() != Some(fresh.as_slice()) {
        fs::create_dir_all(crate_dir.join("include")).expect("include/ can be created");
        fs::write(&header, fresh).expect("include/mvsmtp.h is writable");
    }
}
