//! A stand-in for the Hugging Face Hub's file endpoint, just enough for hf-hub's sync
//! client: `GET /{repo}/resolve/{revision}/{file}` with a `Range` header, answered 206
//! with `x-repo-commit`, `etag` and `content-range` (what hf-hub reads to name the cache
//! blob and size the download); 404 for anything else. Counts the requests it answers.
//! Shared by `models/tests/hub_download.rs` and the root package's CLI test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub struct HubServer {
    pub url: String,
    requests: Arc<AtomicUsize>,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HubServer {
    /// Serve the files of `dir` as the `main` revision of model repo `repo`.
    pub fn serve(repo: &str, dir: &Path) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
        let url = format!("http://{}", server.server_addr());
        let requests = Arc::new(AtomicUsize::new(0));
        let prefix = format!("/{repo}/resolve/main/");
        let (srv, count, dir) = (server.clone(), requests.clone(), dir.to_path_buf());
        let thread = std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                count.fetch_add(1, Ordering::SeqCst);
                let _ = answer(request, &prefix, &dir);
            }
        });
        Self {
            url,
            requests,
            server,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("header")
}

fn answer(request: tiny_http::Request, prefix: &str, dir: &Path) -> std::io::Result<()> {
    let file: Option<PathBuf> = request
        .url()
        .strip_prefix(prefix)
        .filter(|f| !f.contains(".."))
        .map(|f| dir.join(f))
        .filter(|p| p.is_file());
    let Some(file) = file else {
        return request.respond(tiny_http::Response::empty(404));
    };
    let bytes = std::fs::read(&file)?;
    let size = bytes.len();
    let (start, end) = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Range"))
        .and_then(|h| h.value.as_str().strip_prefix("bytes=").map(str::to_owned))
        .and_then(|r| {
            let (a, b) = r.split_once('-')?;
            let a: usize = a.parse().ok()?;
            let b: usize = if b.is_empty() {
                size - 1
            } else {
                b.parse().ok()?
            };
            Some((a, b.min(size - 1)))
        })
        .unwrap_or((0, size - 1));
    // The blob's name in the cache: any stable string per file content will do.
    let etag = format!("\"{:016x}{:08x}\"", fnv1a(&bytes), size);
    let response = tiny_http::Response::from_data(bytes[start..=end].to_vec())
        .with_status_code(206)
        .with_header(header("x-repo-commit", COMMIT))
        .with_header(header("etag", &etag))
        .with_header(header(
            "content-range",
            &format!("bytes {start}-{end}/{size}"),
        ));
    request.respond(response)
}

/// FNV-1a: a content fingerprint for the etag (no cryptographic need here).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
