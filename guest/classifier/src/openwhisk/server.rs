//! The action-container protocol of OpenWhisk (what the invoker speaks to a blackbox image):
//!
//!   POST /init  200 `{"ok":true}` once; 403 `{"error":"Cannot initialize the action more than
//!               once."}` after. The action is built in, so the init body is not needed.
//!   POST /run   `{"value": {...}, "activation_id": ..., ...}` -> 200 with the classifier's
//!               result or `{"error": ...}`; a body that is not an activation -> 400 with an error.
//!               `/run` before `/init` is served (as OpenWhisk's docker skeleton does).
//!
//! Bodies over `MAX_ACTIVATION_BYTES` get 413 before they are read. After each /run the
//! activation sentinel goes to stdout and stderr. One thread per connection (bounded);
//! inferences beyond the core count wait for a slot instead of thrashing.

use super::http::{read_request, write_json, ReadError, Request};
use super::{parse_body, write_logs, Activation, MAX_ACTIVATION_BYTES};
use crate::GuestError;
use std::io::{self, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub const DEFAULT_PORT: u16 = 8080;
/// The environment variable that moves the port (tests run several servers on one host).
pub const PORT_ENV: &str = "ACTION_PORT";

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub port: u16,
    pub max_body: usize,
    /// A client that sends nothing for this long loses its connection (slow clients cannot pin
    /// threads forever).
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_parallel_inferences: usize,
}

impl ServerConfig {
    /// Defaults, with the port from `ACTION_PORT` when set.
    pub fn from_env() -> Result<ServerConfig, GuestError> {
        let port = match std::env::var(PORT_ENV) {
            Ok(p) => p.trim().parse().map_err(|_| {
                GuestError::bad_request(format!("{PORT_ENV}={p:?} is not a port number (1-65535)"))
            })?,
            Err(_) => DEFAULT_PORT,
        };
        Ok(ServerConfig {
            port,
            max_body: MAX_ACTIVATION_BYTES,
            idle_timeout: Duration::from_secs(60),
            max_connections: 64,
            max_parallel_inferences: std::thread::available_parallelism().map_or(2, |n| n.get()),
        })
    }
}

/// A counting semaphore: at most `n` inferences at once.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        drop(free);
        let out = f();
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.freed.notify_one();
        out
    }
}

struct State {
    config: ServerConfig,
    initialized: AtomicBool,
    connections: AtomicUsize,
    slots: Slots,
}

/// Bind, load the model, serve forever. Returns only on a bind or model error.
pub fn serve(config: ServerConfig) -> Result<(), GuestError> {
    crate::warm_up()?;
    let addr = SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = TcpListener::bind(addr).map_err(|e| {
        GuestError::io(format!(
            "cannot listen on {addr} ({e}); set {PORT_ENV} to a free port"
        ))
    })?;
    let state = Arc::new(State {
        slots: Slots {
            free: Mutex::new(config.max_parallel_inferences.max(1)),
            freed: Condvar::new(),
        },
        config,
        initialized: AtomicBool::new(false),
        connections: AtomicUsize::new(0),
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if state.connections.fetch_add(1, Ordering::SeqCst) >= state.config.max_connections {
            state.connections.fetch_sub(1, Ordering::SeqCst);
            let mut s = stream;
            let _ = write_json(
                &mut s,
                503,
                r#"{"error":"too many connections; retry later"}"#,
                false,
            );
            continue;
        }
        let state = Arc::clone(&state);
        let spawned = std::thread::Builder::new().spawn({
            let state = Arc::clone(&state);
            move || {
                serve_connection(stream, &state);
                state.connections.fetch_sub(1, Ordering::SeqCst);
            }
        });
        if spawned.is_err() {
            state.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Ok(())
}

fn serve_connection(stream: TcpStream, state: &State) {
    let _ = stream.set_read_timeout(Some(state.config.idle_timeout));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        match read_request(&mut reader, &mut writer, state.config.max_body) {
            Ok(req) => {
                let keep_alive = req.keep_alive;
                let (status, body) = route(&req, state);
                if write_json(&mut writer, status, &body, keep_alive).is_err() || !keep_alive {
                    return;
                }
            }
            Err(ReadError::Closed | ReadError::Io(_)) => return,
            Err(ReadError::Reject { status, message, unread }) => {
                let body = GuestError::bad_request(message).to_json().to_string();
                let _ = write_json(&mut writer, status, &body, false);
                // Swallow what the client is still sending (bounded, with the read timeout),
                // so it reads our answer instead of a reset.
                let _ = writer.shutdown(std::net::Shutdown::Write);
                let _ = reader.get_mut().set_read_timeout(Some(Duration::from_secs(5)));
                let _ = io::copy(&mut reader.by_ref().take(unread.min(64 << 20) as u64), &mut io::sink());
                return;
            }
        }
    }
}

fn route(req: &Request, state: &State) -> (u16, String) {
    let error = |status: u16, msg: &str| (status, serde_json::json!({ "error": msg }).to_string());
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/init") => {
            if state.initialized.swap(true, Ordering::SeqCst) {
                error(403, "Cannot initialize the action more than once.")
            } else {
                (200, r#"{"ok":true}"#.to_string())
            }
        }
        ("POST", "/run") => {
            let activation = parse_body(&req.body).and_then(Activation::from_envelope);
            match activation {
                Ok(a) => {
                    let (result, log) = state.slots.run(|| a.run());
                    write_logs(Some(&log.to_line()), true);
                    (200, result.to_string())
                }
                Err(e) => {
                    write_logs(Some(&e.message), true);
                    error(400, &e.message)
                }
            }
        }
        (_, "/init" | "/run") => error(405, &format!("{} is not allowed; use POST", req.method)),
        (_, path) => error(404, &format!("no such endpoint {path:?}; use POST /init or POST /run")),
    }
}
