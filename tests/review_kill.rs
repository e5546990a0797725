//! Never lose work: SIGKILL the process in the middle of a burst of autosaved review
//! edits, then check that the sidecar parses and holds every edit but at most the last
//! (the one in flight when the kill landed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use loupe::commands::review_stress::{fingerprint, state_after};
use loupe::datasets::review::ReviewState;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn kill_after(saved: u64) {
    let dir = tempfile::tempdir().unwrap();
    let sidecar = dir.path().join("bench.json.loupe-review.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loupe"))
        .arg("review-stress")
        .arg(&sidecar)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut last = 0;
    for line in stdout.lines() {
        last = line.unwrap().trim_start_matches("saved ").parse().unwrap();
        if last >= saved {
            // Child::kill is SIGKILL on Unix: no destructor, no flush, no cleanup runs.
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child finished before it was killed");
    assert_eq!(last, saved, "the child stopped early");

    let bytes = std::fs::read(&sidecar).unwrap();
    let (state, fp) = ReviewState::from_sidecar(&bytes)
        .unwrap_or_else(|e| panic!("the sidecar does not parse after SIGKILL: {e}"));
    assert!(fp.matches(&fingerprint()));
    // Every edit acknowledged as saved is there; at most the one in flight is extra.
    let revision = state.revision();
    assert!(
        revision == last || revision == last + 1,
        "sidecar at edit {revision}, {last} were acknowledged"
    );
    let expected = state_after(revision);
    assert_eq!(
        state.reviewed().collect::<Vec<_>>(),
        expected.reviewed().collect::<Vec<_>>(),
        "the sidecar's content is not the state after edit {revision}"
    );
}

#[test]
fn sigkill_mid_burst_keeps_every_saved_edit() {
    for saved in [1, 57, 400] {
        kill_after(saved);
    }
}
