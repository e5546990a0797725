//! Hub downloads through hf-hub against a local stand-in for the Hub (no network): files
//! land in the cache byte-identical, progress reaches the file size in several steps,
//! a second request is served from the cache without a request, a missing optional file
//! is `None`, offline misses and cancels are clean errors, and a whole CLIP model
//! resolves from the Hub id and loads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/hub_server.rs"]
mod hub_server;

use hub_server::{COMMIT, HubServer};
use loupe_models::qwen2vl::Error;
use loupe_models::qwen2vl::loader::{Fetch, HubConfig, hub_file_from};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const REPO: &str = "loupe-test/clip-tiny";
const WEIGHTS: &str = "open_clip_model.safetensors";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip_tiny")
}

fn hub(server: &HubServer, cache: &Path) -> HubConfig {
    HubConfig {
        cache: cache.to_path_buf(),
        endpoint: Some(server.url.clone()),
        offline: false,
    }
}

#[test]
fn a_download_reports_progress_and_fills_the_cache_once() {
    let server = HubServer::serve(REPO, &fixture());
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server, cache.path());
    let seen = Mutex::new(Vec::new());
    let record = |file: &str, done: u64, total: u64| {
        seen.lock().unwrap().push((file.to_owned(), done, total));
    };
    let fetch = Fetch {
        progress: &record,
        cancel: &|| false,
    };
    let path = hub_file_from(&hub, REPO, None, WEIGHTS, true, &fetch)
        .unwrap()
        .expect("downloaded");
    let want = std::fs::read(fixture().join(WEIGHTS)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want, "{}", path.display());
    // In the layout huggingface_hub uses: snapshots/<commit>/<file>.
    assert!(
        path.starts_with(
            cache
                .path()
                .join("models--loupe-test--clip-tiny/snapshots")
                .join(COMMIT)
        ),
        "{}",
        path.display()
    );
    let seen = seen.into_inner().unwrap();
    let size = want.len() as u64;
    assert!(seen.iter().all(|(f, _, t)| f == WEIGHTS && *t == size));
    assert_eq!(
        seen.last().map(|s| s.1),
        Some(size),
        "ends at the file size"
    );
    assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "monotonic");
    let steps = seen
        .iter()
        .map(|s| s.1)
        .collect::<std::collections::BTreeSet<_>>();
    assert!(steps.len() >= 4, "only {} distinct steps", steps.len());

    // Cached now: answered without asking the server.
    let before = server.requests();
    let again = hub_file_from(&hub, REPO, None, WEIGHTS, true, &Fetch::quiet())
        .unwrap()
        .unwrap();
    assert_eq!(again, path);
    assert_eq!(server.requests(), before);
    // Offline, the cache still answers.
    let offline = HubConfig {
        offline: true,
        ..hub.clone()
    };
    assert_eq!(
        hub_file_from(&offline, REPO, None, WEIGHTS, true, &Fetch::quiet())
            .unwrap()
            .unwrap(),
        path
    );
}

#[test]
fn misses_offline_and_cancel_are_clean_errors() {
    let server = HubServer::serve(REPO, &fixture());
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server, cache.path());
    // Not on the server: optional → None, required → an error naming the file and cache.
    let none = hub_file_from(&hub, REPO, None, "missing.json", false, &Fetch::quiet()).unwrap();
    assert!(none.is_none());
    let err = hub_file_from(&hub, REPO, None, "missing.json", true, &Fetch::quiet())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing.json") && err.contains("downloading it failed"),
        "{err}"
    );
    assert!(err.contains(&cache.path().display().to_string()), "{err}");
    // Offline with an empty cache: says so, and where it looked; no request made.
    let before = server.requests();
    let offline = HubConfig {
        offline: true,
        ..hub.clone()
    };
    let err = hub_file_from(&offline, REPO, None, WEIGHTS, true, &Fetch::quiet())
        .unwrap_err()
        .to_string();
    assert!(err.contains("HF_HUB_OFFLINE"), "{err}");
    assert_eq!(server.requests(), before);
    // Cancelled before it starts: no file, a typed error.
    let fetch = Fetch {
        progress: &|_, _, _| {},
        cancel: &|| true,
    };
    let err = hub_file_from(&hub, REPO, None, WEIGHTS, true, &fetch).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
}

#[test]
fn a_clip_model_resolves_from_its_hub_id_and_loads() {
    use loupe_models::clip::loader::resolve_in;
    let server = HubServer::serve(REPO, &fixture());
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(&server, cache.path());
    let files = resolve_in(&hub, REPO, None, &Fetch::quiet()).unwrap();
    assert_eq!(
        std::fs::read(&files.weights).unwrap(),
        std::fs::read(fixture().join(WEIGHTS)).unwrap()
    );
    let (config, _model) = loupe_models::clip::loader::load(
        &files,
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
        &|_, _| {},
        &|| false,
    )
    .unwrap();
    let local =
        loupe_models::clip::loader::load_config(&fixture().join("open_clip_config.json")).unwrap();
    assert_eq!(
        (config.model.embed_dim, config.model.text_cfg.width),
        (local.model.embed_dim, local.model.text_cfg.width)
    );
}
