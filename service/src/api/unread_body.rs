//! Connections whose request body was left unread are closed.
//!
//! A handler (or a layer such as the body limit) may answer before it has
//! read the request body — a 413 for an upload whose `Content-Length` is
//! over the limit is the common case. The server then cannot reuse the
//! connection: the unread bytes are still in flight, so hyper drops it after
//! the response. A client that was not told keeps the connection in its pool
//! and its next request fails with a broken pipe or a reset. HTTP/1.1's
//! answer (RFC 9112 §9.6) is `Connection: close` on that response, which
//! every client honours; this middleware adds it whenever the body was not
//! read to its end, and only then, so keep-alive stays the norm.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};

/// A request body that notes when it has been read to its end.
struct Tracked {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: answers to requests whose body was not read to its end carry
/// `Connection: close`.
pub async fn close_if_unread(req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let req = req.map(|inner| Body::new(Tracked { inner, finished: finished.clone() }));
    let mut res = next.run(req).await;
    if !finished.load(Ordering::Acquire) {
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::http::{Request, header};
    use axum::routing::post;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route("/read", post(|body: String| async move { body.len().to_string() }))
            .route("/ignore", post(|| async { "not read" }))
            .layer(DefaultBodyLimit::max(8))
            .layer(axum::middleware::from_fn(super::close_if_unread))
    }

    /// The `Connection` header of the answer to a body sent in `chunks`, as
    /// a socket delivers it: frame by frame.
    async fn connection(path: &str, chunks: &[&'static str]) -> Option<String> {
        let len: usize = chunks.iter().map(|c| c.len()).sum();
        let frames: Vec<_> = chunks.iter().map(|c| Ok::<_, std::io::Error>(*c)).collect();
        let frames = futures::stream::iter(frames);
        let req = Request::post(path).header(header::CONTENT_LENGTH, len).body(Body::from_stream(frames)).unwrap();
        let res = app().oneshot(req).await.unwrap();
        res.headers().get(header::CONNECTION).map(|v| v.to_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_keeps_the_connection() {
        assert_eq!(connection("/read", &["small", "er"]).await, None);
        let empty = Request::post("/ignore").body(Body::empty()).unwrap();
        let res = app().oneshot(empty).await.unwrap();
        assert_eq!(res.headers().get(header::CONNECTION), None, "no body, nothing left unread");
    }

    #[tokio::test]
    async fn an_unread_or_refused_body_closes_the_connection() {
        assert_eq!(connection("/ignore", &["left unread"]).await.as_deref(), Some("close"));
        let over = ["12345678", "12345678", "12345678"];
        assert_eq!(connection("/read", &over).await.as_deref(), Some("close"), "refused after the first frames");
    }
}
