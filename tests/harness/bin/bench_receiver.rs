//! The fast local HTTP receiver of `scripts/bench`: answers `200 ok` to every request as soon as it has
//! read the body, and counts requests and body bytes, so what is measured is the sender's work, not the
//! receiver's. `GET /stats` answers `REQUESTS BYTES` (counted before that request).
//!
//! ```text
//! bench-receiver            # prints the port it listens on (127.0.0.1, chosen by the system), then serves
//! ```
//!
//! It serves until it is killed (`scripts/bench` sends SIGTERM when it is done). One thread: on a
//! small machine the sender being measured keeps the other cores.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    bytes: AtomicU64,
}

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench-receiver: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-receiver: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve() -> std::io::Result<()> {
    let counts = Arc::new(Counts::default());
    let stats = counts.clone();
    let app = axum::Router::new()
        .route(
            "/stats",
            axum::routing::get(move || {
                let stats = stats.clone();
                async move { format!("{} {}", stats.requests.load(Ordering::Relaxed), stats.bytes.load(Ordering::Relaxed)) }
            }),
        )
        .fallback(move |body: axum::body::Bytes| {
            let counts = counts.clone();
            async move {
                counts.requests.fetch_add(1, Ordering::Relaxed);
                counts.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                "ok"
            }
        })
        // The workload's largest events are about 1 MB and a batched request holds 100 of them.
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let mut out = std::io::stdout();
    writeln!(out, "{port}")?;
    out.flush()?;
    axum::serve(listener, app).await
}
