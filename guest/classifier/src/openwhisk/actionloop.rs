//! OpenWhisk's actionloop protocol (the `exec` of a native/Go-proxy action):
//!
//!   * started once, with no arguments, PATH or HOME assumed; the model is loaded before
//!     anything else, then `{"ok":true}` goes to fd 3 if `__OW_WAIT_FOR_ACK` is set;
//!   * per activation, one JSON line on stdin `{"value": {...}, "activation_id": ..., ...}`;
//!     the non-`value` keys become `__OW_*` environment variables, and exactly one JSON line
//!     (result or `{"error": ...}`) goes to fd 3;
//!   * loops until stdin closes. The proxy writes the log sentinels itself.

use super::{parse_body, Activation, MAX_ACTIVATION_BYTES};
use crate::GuestError;
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::os::fd::FromRawFd;

const RESULT_FD: i32 = 3;

extern "C" {
    fn fcntl(fd: i32, cmd: i32, ...) -> i32;
}
const F_GETFD: i32 = 1;

/// Whether fd 3 is open: the actionloop proxy opens it; OpenWhisk's older docker skeleton, which
/// runs `exec` once per activation with the value on stdin, does not.
pub fn result_fd_is_open() -> bool {
    // SAFETY: F_GETFD only queries the descriptor flags.
    unsafe { fcntl(RESULT_FD, F_GETFD) >= 0 }
}

fn result_channel() -> Result<File, GuestError> {
    if !result_fd_is_open() {
        return Err(GuestError::io(
            "file descriptor 3 is not open: this is OpenWhisk's actionloop protocol (one JSON \
             activation per stdin line, results on fd 3); run it under the actionloop proxy, or \
             by hand with `3>&1`",
        ));
    }
    // SAFETY: fd 3 is open (checked above) and owned by this process for its whole life; the
    // File is the only owner.
    Ok(unsafe { File::from_raw_fd(RESULT_FD) })
}

/// Read one line of at most `max` bytes into `line` (reused across activations, so a steady
/// stream of requests does not re-grow a buffer each time). Over-long lines are consumed and
/// reported as `Err(length)`, so the next activation starts on a line boundary.
fn read_line<R: BufRead>(r: &mut R, line: &mut Vec<u8>, max: usize) -> io::Result<Option<Result<(), usize>>> {
    line.clear();
    let n = r.by_ref().take(max as u64 + 1).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        return Ok(Some(Ok(())));
    }
    if n <= max {
        return Ok(Some(Ok(()))); // last line without a newline
    }
    let mut skipped = n;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                skipped += i;
                break;
            }
            None => {
                let len = buf.len();
                r.consume(len);
                skipped += len;
            }
        }
    }
    Ok(Some(Err(skipped)))
}

fn answer(out: &mut File, value: &serde_json::Value) -> io::Result<()> {
    let mut line = value.to_string();
    line.push('\n');
    out.write_all(line.as_bytes())?;
    out.flush()
}

/// Run the loop; returns the process exit code (0 when stdin closes).
pub fn run() -> i32 {
    let mut out = match result_channel() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{}", e.to_json());
            return 2;
        }
    };
    if let Err(e) = crate::warm_up() {
        eprintln!("{}", e.to_json());
        return 1;
    }
    if std::env::var_os("__OW_WAIT_FOR_ACK").is_some_and(|v| !v.is_empty())
        && answer(&mut out, &serde_json::json!({"ok": true})).is_err()
    {
        return 1;
    }
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut bytes = Vec::new();
    loop {
        let line = match read_line(&mut input, &mut bytes, MAX_ACTIVATION_BYTES) {
            Ok(Some(l)) => l,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("{}", GuestError::io(format!("cannot read stdin: {e}")).to_json());
                return 1;
            }
        };
        let activation = match line {
            Ok(()) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(()) => parse_body(&bytes).and_then(Activation::from_envelope),
            Err(n) => Err(GuestError::bad_request(format!(
                "activation is {n} bytes; the limit is {MAX_ACTIVATION_BYTES} bytes (OpenWhisk's \
                 payload limit is 1 MB): send a smaller image"
            ))),
        };
        let result = match activation {
            Ok(a) => {
                for (k, v) in &a.env {
                    // Single-threaded: nothing reads the environment concurrently.
                    std::env::set_var(k, v);
                }
                let (result, log) = a.run();
                eprintln!("{}", log.to_line());
                result
            }
            Err(e) => {
                eprintln!("{}", e.message);
                e.to_json()
            }
        };
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        if let Err(e) = answer(&mut out, &result) {
            eprintln!("{}", GuestError::io(format!("cannot write the result to fd 3: {e}")).to_json());
            return 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_line;
    use std::io::Cursor;

    #[test]
    fn long_lines_are_skipped_whole() {
        let mut r = Cursor::new(b"0123456789\nok\nlast".to_vec());
        let mut line = Vec::new();
        assert_eq!(read_line(&mut r, &mut line, 4).unwrap(), Some(Err(10)));
        assert_eq!(read_line(&mut r, &mut line, 4).unwrap(), Some(Ok(())));
        assert_eq!(line, b"ok");
        assert_eq!(read_line(&mut r, &mut line, 4).unwrap(), Some(Ok(())));
        assert_eq!(line, b"last");
        assert_eq!(read_line(&mut r, &mut line, 4).unwrap(), None);
    }
}
