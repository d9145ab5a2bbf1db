//! The routes of the HTTP listener: `GET` (or `HEAD`) only; every answer is built from one
//! [`Published`] copy.

use hyper::body::Bytes;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::published::Published;
use super::{api, metrics};

type Body = http_body_util::Full<Bytes>;

/// The status page (self-contained: inline CSS and JS, no external assets).
const PAGE: &str = include_str!("page.html");

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Body::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(v) => response(status, "application/json", v),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

/// `since=<seq>` of a query string (`Err`: present but not a number).
fn since(query: Option<&str>) -> Result<Option<u64>, String> {
    let Some(q) = query else { return Ok(None) };
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "since" {
            return v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("since must be a sequence number, not {v:?}"));
        }
    }
    Ok(None)
}

/// The answer to one request.
pub fn respond<B>(req: &Request<B>, p: &Published) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let s = &p.snapshot;
    match req.uri().path() {
        "/" | "/index.html" => {
            let mut r = response(StatusCode::OK, "text/html; charset=utf-8", PAGE);
            r.headers_mut().insert(
                "content-security-policy",
                HeaderValue::from_static(
                    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                     img-src 'self' data:",
                ),
            );
            r
        }
        "/metrics" => {
            let text = metrics::render(p);
            let openmetrics = req
                .headers()
                .get_all(hyper::header::ACCEPT)
                .iter()
                .any(|v| {
                    v.to_str()
                        .is_ok_and(|v| v.contains("application/openmetrics-text"))
                });
            if openmetrics {
                response(StatusCode::OK, metrics::OPENMETRICS, text)
            } else {
                response(StatusCode::OK, metrics::CLASSIC, metrics::to_classic(&text))
            }
        }
        "/api/v1/status" => json(StatusCode::OK, &api::status(s)),
        "/api/v1/checks" => json(StatusCode::OK, &api::checks(s)),
        "/api/v1/events" => match since(req.uri().query()) {
            Ok(since) => json(StatusCode::OK, &api::events(&p.events, since)),
            Err(e) => error(StatusCode::BAD_REQUEST, &e),
        },
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_parses() {
        assert_eq!(since(None), Ok(None));
        assert_eq!(since(Some("since=12")), Ok(Some(12)));
        assert_eq!(since(Some("a=1&since=3")), Ok(Some(3)));
        assert!(since(Some("since=x")).is_err());
        assert_eq!(since(Some("other")), Ok(None));
    }
}
