//! Just enough HTTP/1.1 for the fake, spoken by hand on the socket: one
//! request per connection (every reply says `Connection: close`), a
//! bounded head and a `Content-Length` body. Owning the socket is what lets
//! a fault close the connection after the write was committed (API.md
//! §7.10) instead of answering.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bounds on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
    /// For the whole request, so a stalled client cannot pin a task.
    pub read_timeout: Duration,
}

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The target without its query string.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connection closed before a complete request")]
    Closed,
    #[error("reading the request: {0}")]
    Io(#[from] std::io::Error),
    #[error("no complete request within {0:?}")]
    Timeout(Duration),
    #[error("request head larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("chunked or other transfer codings are not supported; send Content-Length")]
    LengthRequired,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

impl HttpError {
    /// A stable snake_case code, as every library error in the workspace has.
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::Closed => "http_closed",
            HttpError::Io(_) => "http_io",
            HttpError::Timeout(_) => "http_timeout",
            HttpError::HeadTooLarge(_) => "http_head_too_large",
            HttpError::BodyTooLarge(_) => "http_body_too_large",
            HttpError::LengthRequired => "http_length_required",
            HttpError::Malformed(_) => "http_malformed",
        }
    }

    /// The status to answer with, when the client is still there to read it.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Closed | HttpError::Io(_) => None,
            HttpError::Timeout(_) => Some(408),
            HttpError::HeadTooLarge(_) => Some(431),
            HttpError::BodyTooLarge(_) => Some(413),
            HttpError::LengthRequired => Some(411),
            HttpError::Malformed(_) => Some(400),
        }
    }
}

/// Reads one request, answering `Expect: 100-continue` so that curl (the
/// PHP harness's client) does not stall a second before sending the body.
pub async fn read_request<S>(stream: &mut S, limits: Limits) -> Result<Request, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(limits.read_timeout, read_inner(stream, limits)).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout(limits.read_timeout)),
    }
}

async fn read_inner<S>(stream: &mut S, limits: Limits) -> Result<Request, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > limits.max_head_bytes {
            return Err(HttpError::HeadTooLarge(limits.max_head_bytes));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > limits.max_head_bytes {
        return Err(HttpError::HeadTooLarge(limits.max_head_bytes));
    }
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| HttpError::Malformed("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or(HttpError::Malformed("no request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed("request line is not `METHOD TARGET VERSION`"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("not HTTP/1.x"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or(HttpError::Malformed("header without a colon"))?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(HttpError::LengthRequired);
    }
    let mut length: Option<usize> = None;
    for (k, v) in &request.headers {
        if k.eq_ignore_ascii_case("content-length") {
            let n = v.parse().map_err(|_| HttpError::Malformed("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HttpError::Malformed("conflicting Content-Length headers"));
            }
            length = Some(n);
        }
    }
    let length = length.unwrap_or(0);
    if length > limits.max_body_bytes {
        return Err(HttpError::BodyTooLarge(limits.max_body_bytes));
    }
    let mut body = buf.split_off(head_end + 4);
    if body.len() < length
        && request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    request.body = body;
    Ok(request)
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            // WHMCS's own Content-Type is [unconfirmed] (API.md §1.1).
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }

    pub fn html(status: u16, text: &str) -> Response {
        Response {
            status,
            content_type: "text/html; charset=utf-8",
            body: format!(
                "<!DOCTYPE html>\n<html><head><title>{text}</title></head><body><h1>{text}</h1></body></html>\n"
            )
            .into_bytes(),
        }
    }

    /// A page for a status with no body of its own (404, 413, …).
    pub fn status_page(status: u16) -> Response {
        Response::html(status, &format!("{status} {}", reason(status)))
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Writes `response` and closes the write side.
pub async fn write_response<S>(stream: &mut S, response: &Response) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&response.body).await?;
    stream.flush().await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head_bytes: 1024,
        max_body_bytes: 16,
        read_timeout: Duration::from_secs(5),
    };

    async fn parse(raw: &[u8]) -> Result<Request, HttpError> {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client.write_all(raw).await.unwrap();
        client.shutdown().await.unwrap();
        read_request(&mut server, LIMITS).await
    }

    #[tokio::test]
    async fn requests_and_their_bounds() {
        let r = parse(b"POST /includes/api.php?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\n\r\nab=cdEXTRA")
            .await
            .unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_str()),
            ("POST", "/includes/api.php", "x=1")
        );
        assert_eq!((r.header("HOST"), r.body.as_slice()), (Some("a"), b"ab=cd".as_slice()));
        let status = |r: Result<Request, HttpError>| r.err().and_then(|e| e.status());
        assert_eq!(
            status(parse(b"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n").await),
            Some(413)
        );
        assert_eq!(
            status(parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").await),
            Some(411)
        );
        assert_eq!(
            status(parse(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n").await),
            Some(400)
        );
        assert_eq!(status(parse(b"GARBAGE\r\n\r\n").await), Some(400));
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(2000));
        assert_eq!(status(parse(long.as_bytes()).await), Some(431));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nab").await,
            Err(HttpError::Closed)
        ));
    }
}
