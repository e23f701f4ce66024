//! Just enough HTTP/1.1 for OpenWhisk's invoker (and curl, Python's http.client): requests with
//! a Content-Length body, keep-alive, `Expect: 100-continue`. Every limit is checked before the
//! bytes are buffered, so a hostile client costs at most the limits.

use std::io::{self, BufRead, Read, Write};

const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

/// Why a request could not be read. `status` is what to answer (then close the connection).
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection cleanly between requests.
    Closed,
    /// Socket error or timeout mid-request: nothing sensible to answer.
    Io(#[allow(dead_code)] io::Error),
    /// The request is unacceptable; answer `status` with `message`, then close.
    Reject {
        status: u16,
        message: String,
        /// Body bytes announced but not read (drained before closing, so the peer sees the
        /// answer instead of a connection reset).
        unread: usize,
    },
}

fn reject(status: u16, message: impl Into<String>) -> ReadError {
    ReadError::Reject {
        status,
        message: message.into(),
        unread: 0,
    }
}

/// Read one line of the head, bounded by what is left of the head budget.
fn read_head_line<R: BufRead>(r: &mut R, budget: &mut usize) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(ReadError::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget {
        return Err(reject(431, format!("request head is over {MAX_HEAD_BYTES} bytes")));
    }
    *budget -= n;
    if line.last() != Some(&b'\n') {
        return Err(ReadError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-request",
        )));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| reject(400, "request head is not valid UTF-8"))
}

/// Read one request. `max_body` bounds the body; a client waiting for `100 Continue` gets it on
/// `w` only when its body is acceptable.
pub fn read_request<R: BufRead, W: Write>(
    r: &mut R,
    w: &mut W,
    max_body: usize,
) -> Result<Request, ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    // Tolerate empty lines between requests (RFC 9112 §2.2).
    let request_line = loop {
        match read_head_line(r, &mut budget)? {
            None => return Err(ReadError::Closed),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reject(400, format!("malformed request line {request_line:?}")));
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(reject(505, format!("unsupported protocol {version:?}; use HTTP/1.1"))),
    };
    let mut content_length: Option<usize> = None;
    let mut keep_alive = !http10;
    let mut expect_continue = false;
    for i in 0.. {
        let line = read_head_line(r, &mut budget)?.ok_or_else(|| {
            ReadError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-head"))
        })?;
        if line.is_empty() {
            break;
        }
        if i >= MAX_HEADERS {
            return Err(reject(431, format!("more than {MAX_HEADERS} header fields")));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(reject(400, format!("malformed header line {line:?}")));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| reject(400, format!("bad Content-Length {value:?}")))?;
                if content_length.is_some_and(|m| m != n) {
                    return Err(reject(400, "conflicting Content-Length headers"));
                }
                content_length = Some(n);
            }
            "transfer-encoding" if !value.eq_ignore_ascii_case("identity") => {
                return Err(reject(
                    411,
                    "chunked request bodies are not supported; send a Content-Length",
                ));
            }
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.split(',').any(|t| t.trim() == "close") {
                    keep_alive = false;
                } else if v.split(',').any(|t| t.trim() == "keep-alive") {
                    keep_alive = true;
                }
            }
            "expect" if value.eq_ignore_ascii_case("100-continue") => expect_continue = true,
            _ => {}
        }
    }
    let length = content_length.unwrap_or(0);
    if length > max_body {
        return Err(ReadError::Reject {
            status: 413,
            message: format!(
                "request body is {length} bytes; the limit is {max_body} bytes (OpenWhisk's \
                 payload limit is 1 MB): send a smaller image"
            ),
            unread: if expect_continue { 0 } else { length },
        });
    }
    if expect_continue && length > 0 {
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").map_err(ReadError::Io)?;
        w.flush().map_err(ReadError::Io)?;
    }
    let mut body = vec![0u8; length];
    r.read_exact(&mut body).map_err(ReadError::Io)?;
    Ok(Request {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or("").to_string(),
        body,
        keep_alive,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

pub fn write_json<W: Write>(w: &mut W, status: u16, body: &str, keep_alive: bool) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: {}\r\n\r\n",
        reason(status),
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body.as_bytes())?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read(raw: &str, max: usize) -> Result<Request, ReadError> {
        read_request(&mut Cursor::new(raw.as_bytes().to_vec()), &mut Vec::new(), max)
    }

    #[test]
    fn reads_a_post_with_body() {
        let r = read("POST /run HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 10).unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str(), r.body.as_slice()), ("POST", "/run", &b"{}"[..]));
        assert!(r.keep_alive);
    }

    #[test]
    fn refuses_oversized_and_chunked_bodies() {
        let big = read("POST /run HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10);
        assert!(matches!(big, Err(ReadError::Reject { status: 413, unread: 11, .. })));
        let chunked = read("POST /run HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 10);
        assert!(matches!(chunked, Err(ReadError::Reject { status: 411, .. })));
        assert!(matches!(read("GARBAGE\r\n\r\n", 10), Err(ReadError::Reject { status: 400, .. })));
        assert!(matches!(read("", 10), Err(ReadError::Closed)));
    }
}
