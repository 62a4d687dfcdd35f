//! The plumbing of the strict vendor fakes ([`crate::rest_receivers`], [`crate::azure_monitor_fake`]):
//! an axum app served on 127.0.0.1:0 from its own thread and runtime, so it keeps answering while a
//! test blocks its own runtime (running a binary, say), and stopped when dropped; and the state a
//! fake keeps between requests ([`FakeState`]).

use std::sync::{Mutex, MutexGuard};

use axum::Router;
use tokio::sync::oneshot;

/// What a fake keeps between requests: its configuration, fixed when it starts, and its record
/// (the requests it saw, the violations it found, the faults it was asked for) behind a lock.
pub struct FakeState<C, R> {
    pub config: C,
    record: Mutex<R>,
}

impl<C, R: Default> FakeState<C, R> {
    pub fn new(config: C) -> Self {
        FakeState { config, record: Mutex::new(R::default()) }
    }

    /// The record. A handler that panicked while holding it does not make it unreadable: the test
    /// still sees what was recorded.
    pub fn lock(&self) -> MutexGuard<'_, R> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running app. Dropping it stops the server and waits for its thread.
pub struct FakeServer {
    addr: std::net::SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Serves `app`; `name` says what it is in panics and the thread's name (`rest-receiver`, ...).
    pub fn start(name: &str, app: Router) -> FakeServer {
        Self::try_start(name, app).unwrap_or_else(|e| panic!("starting the {name} on 127.0.0.1: {e}"))
    }

    /// [`start`](Self::start), for a caller that reports the failure itself (the Lambda Runtime API
    /// emulator): no free loopback port, or no thread or runtime to serve from.
    pub fn try_start(name: &str, app: Router) -> std::io::Result<FakeServer> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(format!("{name}-{}", addr.port())).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = shutdown_rx => {}
                }
            });
            // Dropping the runtime here cancels open requests (a long poll, say) and connections.
        })?;
        Ok(FakeServer { addr, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
