//! The job system: progress, results, cancel, failures, and the inference thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use loupe::worker::{InferenceThread, JobError, Worker};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[test]
fn results_and_progress_arrive_and_the_repaint_hook_fires() {
    let repaints = Arc::new(AtomicUsize::new(0));
    let counter = repaints.clone();
    let worker = Worker::new(Arc::new(move || {
        counter.fetch_add(1, Ordering::Relaxed);
    }))
    .unwrap();
    let job = worker.spawn("sum", |ctx| {
        ctx.progress(0.5, "half way");
        Ok((1..=100u64).sum::<u64>())
    });
    assert_eq!(job.wait(), Ok(5050));
    // Once for the progress report, once for the result.
    assert!(repaints.load(Ordering::Relaxed) >= 2);
    assert!(worker.board().running().is_empty());
}

#[test]
fn cancel_stops_a_running_job_promptly() {
    let worker = Worker::headless().unwrap();
    let (started_tx, started_rx) = crossbeam_channel::bounded(1);
    let (_hold, never) = crossbeam_channel::bounded::<()>(0);
    let mut job = worker.spawn("forever", move |ctx| {
        let _ = started_tx.send(());
        loop {
            ctx.check_cancelled()?;
            let _ = never.recv_timeout(Duration::from_millis(5));
        }
        #[allow(unreachable_code)]
        Ok(())
    });
    started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(job.try_take().is_none());
    let t = Instant::now();
    job.cancel();
    assert_eq!(
        job.wait_timeout(Duration::from_secs(5)),
        Some(Err(JobError::Cancelled))
    );
    // Not a speed goal: a generous bound that only a missed cancel would exceed.
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_panicking_job_is_reported_not_fatal() {
    let worker = Worker::headless().unwrap();
    let job = worker.spawn::<(), _>("bad file", |_| panic!("corrupt input"));
    assert_eq!(job.wait(), Err(JobError::Lost("bad file".into())));
    assert!(worker.board().last_error().unwrap().contains("bad file"));
    // The pool still works afterwards.
    assert_eq!(worker.spawn("after", |_| Ok(7)).wait(), Ok(7));
}

#[test]
fn failures_carry_their_message_to_the_board() {
    let worker = Worker::headless().unwrap();
    let job = worker.spawn::<(), _>("load x.ply", |_| {
        Err(JobError::Failed("x.ply: truncated".into()))
    });
    assert_eq!(job.wait(), Err(JobError::Failed("x.ply: truncated".into())));
    assert_eq!(
        worker.board().last_error().unwrap(),
        "load x.ply: x.ply: truncated"
    );
}

#[test]
fn the_inference_thread_keeps_its_model_and_runs_requests_in_order() {
    let worker = Worker::headless().unwrap();
    let thread: InferenceThread<Vec<u32>> = InferenceThread::spawn(
        "inference",
        worker.board().clone(),
        worker.repaint_hook().clone(),
    )
    .unwrap();
    let load = thread.submit("load", |model, _| {
        *model = Some(Vec::new());
        Ok(std::thread::current().name().map(str::to_owned))
    });
    let jobs: Vec<_> = (0..5u32)
        .map(|i| {
            thread.submit("step", move |model, _| {
                let m = model.as_mut().ok_or(JobError::Failed("no model".into()))?;
                m.push(i);
                Ok((m.clone(), std::thread::current().name().map(str::to_owned)))
            })
        })
        .collect();
    let load_thread = load.wait().unwrap();
    assert_eq!(load_thread.as_deref(), Some("inference"));
    let results: Vec<_> = jobs.into_iter().map(|j| j.wait().unwrap()).collect();
    assert_eq!(results.last().unwrap().0, vec![0, 1, 2, 3, 4]);
    assert!(
        results
            .iter()
            .all(|(_, name)| name.as_deref() == Some("inference"))
    );
}
