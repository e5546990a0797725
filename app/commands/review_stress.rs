//! `loupe review-stress SIDECAR` (hidden): a burst of review edits, each autosaved the
//! way the GUI saves them, printing `saved N` once edit N is on disk. The kill test
//! SIGKILLs it mid-burst and checks the sidecar against `state_after`.

use crate::datasets::review::{Decision, Fingerprint, ReviewBox, ReviewState};
use crate::datasets::review_autosave::Autosaver;
use loupe_models::answer::NormBox;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct StressArgs {
    pub sidecar: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    pub edits: u64,
}

/// The data the stress review pretends to belong to.
pub fn fingerprint() -> Fingerprint {
    Fingerprint::of_bytes("stress", b"stress", 50)
}

/// Edit number `k` (1-based): every kind of change, spread over 50 items, with an undo
/// every seventh step so undo is saved too.
pub fn apply_edit(state: &mut ReviewState, k: u64) {
    if k.is_multiple_of(7) {
        state.undo();
        return;
    }
    let item = (k % 50) as usize;
    let decision = Decision::ALL[(k % 4) as usize];
    let x2 = 0.1 + (k % 900) as f32 / 1000.0;
    state.edit(item, |r| {
        r.decision = decision;
        r.note = format!("edit {k}");
        r.boxes = Some(vec![ReviewBox {
            image: (k % 3) as usize,
            bbox: NormBox::new(0.05, 0.05, x2, 0.5),
        }]);
    });
}

/// The state after edits `1..=n`.
pub fn state_after(n: u64) -> ReviewState {
    let mut s = ReviewState::default();
    for k in 1..=n {
        apply_edit(&mut s, k);
    }
    s
}

pub fn run(args: &StressArgs) -> anyhow::Result<()> {
    let saver = Autosaver::new()?;
    let fp = fingerprint();
    let mut state = ReviewState::default();
    let mut out = std::io::stdout().lock();
    for k in 1..=args.edits {
        apply_edit(&mut state, k);
        saver.save(args.sidecar.clone(), state.to_sidecar(&fp), k);
        if !saver.flush(Duration::from_secs(30)) {
            anyhow::bail!("the autosave did not finish edit {k}");
        }
        if let Some(e) = saver.take_errors().first() {
            anyhow::bail!("{e}");
        }
        writeln!(out, "saved {k}")?;
        out.flush()?;
    }
    Ok(())
}
