//! A minimal HTTP/1.1 client for load generation, in the manner of `wrk`: one keep-alive TCP
//! connection, one request at a time, request bytes built by the caller, responses framed by
//! `Content-Length`, chunked encoding or the end of the connection. It does as little as
//! possible per request so that the load generator, which shares the machine's cores with what
//! it measures, costs little.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read-buffer growth step.
const READ_CHUNK: usize = 16 * 1024;

/// One response.
#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    /// The body, when it was asked for.
    pub body: Vec<u8>,
    /// Body bytes received (kept or not).
    pub body_len: u64,
    /// `\n` bytes in the body (counted only when the body is not kept: CSV rows of an export).
    pub lines: u64,
}

impl Response {
    /// The string value of the first `"name":"…"` in a JSON body (no escapes expected).
    pub fn json_str(&self, name: &str) -> Option<&str> {
        json_str(&self.body, name)
    }
}

/// The string value of the first `"name":"…"` in `body` (values without escapes only).
pub fn json_str<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    let needle = format!("\"{name}\":\"");
    let start = find(body, needle.as_bytes())? + needle.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&body[start..start + len]).ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Request bytes: `method path` with `headers` and `body`.
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method == "POST" {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// One keep-alive connection; reconnects after an error or `Connection: close`.
pub struct Connection {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    pos: usize,
    /// Connections opened (the first one included).
    pub connects: u64,
}

enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            connects: 0,
        }
    }

    /// Sends `bytes` and reads the response; `keep_body` keeps the body in memory (otherwise
    /// it is only counted). On error the connection is dropped and the next call reconnects.
    pub async fn send(&mut self, bytes: &[u8], keep_body: bool) -> io::Result<Response> {
        let result = self.exchange(bytes, keep_body).await;
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.stream = None;
        self.buf.clear();
        self.pos = 0;
    }

    async fn exchange(&mut self, bytes: &[u8], keep_body: bool) -> io::Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.connects += 1;
            self.buf.clear();
            self.pos = 0;
        }
        if let Some(stream) = self.stream.as_mut() {
            stream.write_all(bytes).await?;
        }
        let (status, framing, close) = self.read_head().await?;
        let mut response = Response {
            status,
            ..Response::default()
        };
        match framing {
            Framing::Length(n) => self.consume(n, keep_body, &mut response).await?,
            Framing::Chunked => loop {
                let line = self.read_line().await?;
                let size = line.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size, 16)
                    .map_err(|_| invalid(format!("bad chunk size {size:?}")))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !self.read_line().await?.is_empty() {}
                    break;
                }
                self.consume(size, keep_body, &mut response).await?;
                if !self.read_line().await?.is_empty() {
                    return Err(invalid("chunk not followed by CRLF".into()));
                }
            },
            Framing::UntilClose => {
                loop {
                    let available = (self.buf.len() - self.pos) as u64;
                    self.consume(available, keep_body, &mut response).await?;
                    if self.read_more().await? == 0 {
                        break;
                    }
                }
                self.reset();
                return Ok(response);
            }
        }
        if close {
            self.reset();
        }
        Ok(response)
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the end of the stream.
    async fn read_more(&mut self) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 4 * READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        stream.read_buf(&mut self.buf).await
    }

    async fn read_more_or_eof(&mut self) -> io::Result<()> {
        if self.read_more().await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed mid-response",
            ));
        }
        Ok(())
    }

    async fn read_head(&mut self) -> io::Result<(u16, Framing, bool)> {
        loop {
            if self.pos < self.buf.len() {
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut parsed = httparse::Response::new(&mut headers);
                match parsed.parse(&self.buf[self.pos..]) {
                    Ok(httparse::Status::Complete(len)) => {
                        let status = parsed.code.unwrap_or(0);
                        let mut framing = Framing::UntilClose;
                        let mut close = parsed.version == Some(0);
                        for header in parsed.headers.iter() {
                            let value = std::str::from_utf8(header.value).unwrap_or("").trim();
                            if header.name.eq_ignore_ascii_case("content-length") {
                                let n = value
                                    .parse()
                                    .map_err(|_| invalid(format!("bad content-length {value}")))?;
                                framing = Framing::Length(n);
                            } else if header.name.eq_ignore_ascii_case("transfer-encoding")
                                && value.to_ascii_lowercase().contains("chunked")
                            {
                                framing = Framing::Chunked;
                            } else if header.name.eq_ignore_ascii_case("connection") {
                                close = value.eq_ignore_ascii_case("close");
                            }
                        }
                        if status == 204 || status == 304 {
                            framing = Framing::Length(0);
                        }
                        self.pos += len;
                        return Ok((status, framing, close));
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(error) => return Err(invalid(format!("bad response head: {error}"))),
                }
            }
            self.read_more_or_eof().await?;
        }
    }

    /// One CRLF-terminated line (without the CRLF).
    async fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(at) = find(&self.buf[self.pos..], b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + at]).into_owned();
                self.pos += at + 2;
                return Ok(line);
            }
            self.read_more_or_eof().await?;
        }
    }

    async fn consume(&mut self, n: u64, keep: bool, response: &mut Response) -> io::Result<()> {
        let mut remaining = n;
        while remaining > 0 {
            if self.pos == self.buf.len() {
                self.read_more_or_eof().await?;
            }
            let available = ((self.buf.len() - self.pos) as u64).min(remaining) as usize;
            let bytes = &self.buf[self.pos..self.pos + available];
            if keep {
                response.body.extend_from_slice(bytes);
            } else {
                response.lines += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            }
            self.pos += available;
            remaining -= available as u64;
            response.body_len += available as u64;
        }
        Ok(())
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_json_strings() {
        let body = br#"{"id":"0192-ab","type":"inquiry","paymentCode":"abc"}"#;
        assert_eq!(json_str(body, "id"), Some("0192-ab"));
        assert_eq!(json_str(body, "paymentCode"), Some("abc"));
        assert_eq!(json_str(body, "missing"), None);
    }

    #[test]
    fn builds_requests_with_length() {
        let bytes = request("POST", "h", "/p", &[("A", "b")], b"{}");
        assert_eq!(
            bytes,
            b"POST /p HTTP/1.1\r\nHost: h\r\nA: b\r\nContent-Length: 2\r\n\r\n{}".to_vec()
        );
    }
}
