//! A small blocking HTTP client over `wasi:http/outgoing-handler`.

use std::io::{Read, Write};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

/// A parsed `http(s)://authority/path` URL.
pub struct Url {
    scheme: Scheme,
    authority: String,
    path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{url}` is not an http(s) URL"))?;
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(format!("scheme `{other}` in `{url}` is not http or https")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("`{url}` has no host"));
        }
        Ok(Url {
            scheme,
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// A response with its whole body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// Why a request did not produce a response.
pub enum Failure {
    /// The host refused the destination or the body.
    Denied,
    /// Anything else; `retryable` when trying again later can help.
    Transport { message: String, retryable: bool },
}

impl From<ErrorCode> for Failure {
    fn from(code: ErrorCode) -> Failure {
        match code {
            ErrorCode::HttpRequestDenied => Failure::Denied,
            ErrorCode::DnsTimeout
            | ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTerminated
            | ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::ConnectionWriteTimeout
            | ErrorCode::ConnectionLimitReached
            | ErrorCode::HttpResponseTimeout
            | ErrorCode::DestinationUnavailable => Failure::Transport {
                message: format!("{code:?}"),
                retryable: true,
            },
            other => Failure::Transport {
                message: format!("{other:?}"),
                retryable: false,
            },
        }
    }
}

fn transport(message: &str) -> Failure {
    Failure::Transport {
        message: message.to_owned(),
        retryable: false,
    }
}

/// Sends `body` to `url` with `method` and `headers`; blocks until the whole
/// response has arrived.
pub fn send(
    method: Method,
    url: &Url,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, Failure> {
    let fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
        .collect();
    let fields =
        Fields::from_list(&fields).map_err(|e| transport(&format!("bad header: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let set =
        |ok: Result<(), ()>, what: &str| ok.map_err(|()| transport(&format!("invalid {what}")));
    set(request.set_method(&method), "method")?;
    set(request.set_scheme(Some(&url.scheme)), "scheme")?;
    set(request.set_authority(Some(&url.authority)), "host")?;
    set(request.set_path_with_query(Some(&url.path)), "path")?;

    let outgoing = request
        .body()
        .map_err(|()| transport("request body taken twice"))?;
    let pending = outgoing_handler::handle(request, None)?;
    {
        let mut stream = outgoing
            .write()
            .map_err(|()| transport("request body stream taken twice"))?;
        // A refused request closes the stream; the reason comes with the
        // response below.
        if stream
            .write_all(body)
            .and_then(|()| Write::flush(&mut stream))
            .is_err()
        {
            drop(stream);
            drop(outgoing);
            return Err(await_error(&pending));
        }
    }
    OutgoingBody::finish(outgoing, None)?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(code.into()),
        Some(Err(())) | None => return Err(transport("the response was lost")),
    };
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| transport("response body taken twice"))?;
    let mut body = Vec::new();
    {
        let mut stream = incoming
            .stream()
            .map_err(|()| transport("response body stream taken twice"))?;
        stream
            .read_to_end(&mut body)
            .map_err(|e| Failure::Transport {
                message: format!("reading the response: {e}"),
                retryable: true,
            })?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn await_error(pending: &outgoing_handler::FutureIncomingResponse) -> Failure {
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Err(code))) => code.into(),
        _ => transport("the request body could not be sent"),
    }
}
