//! A minimal blocking HTTP/1.1 client with keep-alive, for the load
//! generator and the end-to-end tests: enough to POST JSON and GET small
//! answers from cdrate on loopback, with no dependency. Handles
//! `content-length` and `chunked` bodies.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::RwLock;
use std::time::Duration;

/// A bearer token every [`Client::new`] sends unless a request names its
/// own `Authorization`: the load generator and the e2e tests talk to
/// engines that hold the same token (see [`set_default_bearer`]).
static DEFAULT_BEARER: RwLock<Option<String>> = RwLock::new(None);

/// Makes every client of this process send `Authorization: Bearer <token>`.
pub fn set_default_bearer(token: &str) {
    if let Ok(mut t) = DEFAULT_BEARER.write() {
        *t = Some(token.to_owned());
    }
}

/// A response: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive connection, re-opened after an error.
pub struct Client {
    addr: SocketAddr,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
    bearer: Option<String>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            timeout: Duration::from_secs(60),
            conn: None,
            bearer: DEFAULT_BEARER.read().ok().and_then(|t| t.clone()),
        }
    }

    /// A client that sends no `Authorization` of its own (access tests).
    pub fn bare(addr: SocketAddr) -> Client {
        Client {
            bearer: None,
            ..Client::new(addr)
        }
    }

    pub fn get(&mut self, path: &str) -> io::Result<Response> {
        self.request("GET", path, None, &[])
    }

    pub fn post_json(&mut self, path: &str, body: &[u8]) -> io::Result<Response> {
        self.request("POST", path, Some("application/json"), body)
    }

    /// Sends one request; on any I/O error the connection is dropped so the
    /// next call reconnects (the caller decides whether to retry).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> io::Result<Response> {
        self.request_with(method, path, content_type, &[], body)
    }

    /// [`Client::request`] with extra headers (`Authorization`, signatures).
    pub fn request_with(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let reused = self.conn.is_some();
        let mut result = self.try_request(method, path, content_type, headers, body);
        if result.is_err() {
            self.conn = None;
            // The server may close an idle keep-alive connection (or one it
            // answered without reading the whole body) just as it is reused:
            // one retry on a fresh connection, as HTTP clients do. cdrate's
            // ingest is idempotent, so a repeated POST changes nothing.
            if reused {
                result = self.try_request(method, path, content_type, headers, body);
                if result.is_err() {
                    self.conn = None;
                }
            }
        }
        result
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        if self.conn.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, self.timeout)?;
            stream.set_read_timeout(Some(self.timeout))?;
            stream.set_write_timeout(Some(self.timeout))?;
            stream.set_nodelay(true)?;
            self.conn = Some(BufReader::new(stream));
        }
        let conn = self.conn.as_mut().ok_or_else(|| io::Error::other("no connection"))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("content-type: {ct}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let own_auth = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        if let (Some(token), false) = (&self.bearer, own_auth) {
            head.push_str(&format!("authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        let stream = conn.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()?;
        read_response(conn)
    }
}

fn read_response(conn: &mut BufReader<TcpStream>) -> io::Result<Response> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_owned());
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        conn.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse::<usize>().ok();
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let size =
                usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).map_err(|_| bad("bad chunk"))?;
            if size == 0 {
                line.clear();
                conn.read_line(&mut line)?;
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            conn.read_exact(&mut body[start..])?;
            line.clear();
            conn.read_line(&mut line)?;
        }
    } else {
        body.resize(length.unwrap_or(0), 0);
        conn.read_exact(&mut body)?;
    }
    Ok(Response { status, body })
}
