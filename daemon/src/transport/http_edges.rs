//! Plain HTTP POST calls, between hyper and jsonrpsee: the request body is read with a
//! deadline and a size bound (a stalled body is not held), ids jsonrpsee cannot
//! carry are swapped for placeholders and back (see [`super::ids`]), and a call made
//! only of notifications is answered `204 No Content` (PROTOCOL.md 11.4).

use super::ids::{self, Prepared};
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::HttpBody;
use std::time::Duration;
use tower::Service;

/// How long a client may take to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one non-upgrade HTTP request through `rpc`.
pub async fn call<S, B>(
    mut rpc: S,
    req: Request<B>,
    max_body: usize,
) -> Result<Response<HttpBody>, BoxError>
where
    S: Service<Request<Full<Bytes>>, Response = Response<HttpBody>, Error = BoxError>,
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut parts, body) = req.into_parts();
    let bytes =
        match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, max_body).collect()).await {
            Err(_) => {
                tracing::debug!("request body not received in time");
                return Ok(closing(json(
                    StatusCode::REQUEST_TIMEOUT,
                    ids::error_reply(-32600, "request body not received in time"),
                )));
            }
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Ok(closing(json(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ids::error_reply(-32600, "request too big"),
                )));
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(c)) => c.to_bytes(),
        };
    if parts.method != http::Method::POST {
        return rpc.call(Request::from_parts(parts, Full::new(bytes))).await;
    }
    let (body, restore, expects_reply) = match ids::prepare(&bytes) {
        Prepared::Answer(reply) => return Ok(json(StatusCode::OK, reply)),
        Prepared::Forward {
            body,
            ids,
            errors,
            batch,
            expects_reply,
        } => (body, (ids, errors, batch), expects_reply),
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, body.len().into());
    let resp = rpc
        .call(Request::from_parts(parts, Full::new(Bytes::from(body))))
        .await?;
    let (ids, errors, batch) = restore;
    if !expects_reply && resp.status() == StatusCode::OK {
        if !errors.is_empty() {
            // Notifications and entries refused here: only the refusals are answered.
            return Ok(json(StatusCode::OK, format!("[{}]", errors.join(","))));
        }
        let mut empty = Response::new(HttpBody::from(""));
        *empty.status_mut() = StatusCode::NO_CONTENT;
        return Ok(empty);
    }
    if ids.is_empty() && errors.is_empty() {
        return Ok(resp);
    }
    let (mut parts, body) = resp.into_parts();
    let reply = body.collect().await?.to_bytes();
    let restored = ids::restore(&reply, &ids, &errors, batch);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, restored.len().into());
    Ok(Response::from_parts(parts, HttpBody::from(restored)))
}

fn json(status: StatusCode, body: String) -> Response<HttpBody> {
    let mut resp = Response::new(HttpBody::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// The connection closes after this reply: the rest of the body is not read.
fn closing(mut resp: Response<HttpBody>) -> Response<HttpBody> {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
