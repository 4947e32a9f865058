//! The committed C header must be exactly what the build generates, and document every item.

use std::path::Path;
use std::process::Command;

const HEADER: &str = "include/mvsmtp.h";

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn header_matches_generated() {
    let generated = std::fs::read_to_string(env!("MVSMTP_GENERATED_HEADER")).expect("build.rs wrote the generated header");
    let in_tree = std::fs::read_to_string(repository().join(HEADER)).expect("include/mvsmtp.h exists");
    assert!(generated == in_tree, "include/mvsmtp.h differs from the generated header; rebuild");
}

#[test]
fn header_committed() {
    // build.rs rewrites include/mvsmtp.h when the generated text changes, so a difference
    // from the committed version means the header was not committed after a change.
    let status = Command::new("git").arg("-C").arg(repository()).args(["rev-parse", "--is-inside-work-tree"]).output();
    let Ok(status) = status else {
        panic!("git is needed to compare include/mvsmtp.h with the committed version");
    };
    if !status.status.success() {
        eprintln!("not a git checkout; skipped the comparison with the committed header");
        return;
    }
    let diff = Command::new("git")
        .arg("-C")
        .arg(repository())
        .args(["diff", "--exit-code", "HEAD", "--", HEADER])
        .output()
        .expect("git diff runs");
    assert!(
        diff.status.success(),
        "include/mvsmtp.h differs from the committed version; commit the regenerated header:\n{}",
        String::from_utf8_lossy(&diff.stdout)
    );
}

#[test]
fn every_item_documented() {
    let header = std::fs::read_to_string(repository().join(HEADER)).unwrap();
    let lines: Vec<&str> = header.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let is_item = line.starts_with("#define SMTP_") || line.starts_with("int smtp_") || line.starts_with("const char *smtp_");
        if is_item {
            let previous = lines[..index].iter().rev().find(|l| !l.trim().is_empty()).copied().unwrap_or("");
            assert!(previous.trim_end().ends_with("*/"), "no doc comment above: {line}");
        }
    }
}

#[test]
fn header_exports_only_smtp_names() {
    let header = std::fs::read_to_string(repository().join(HEADER)).unwrap();
    for line in header.lines() {
        if let Some(name) = line.strip_prefix("#define ") {
            let name = name.split_whitespace().next().unwrap_or("");
            assert!(name.starts_with("SMTP_") || name == "MVSMTP_H", "unexpected macro {name}");
        }
    }
}
