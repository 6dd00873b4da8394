//! The dashboard: one self-contained page (no build step, no external
//! assets) served by the host. It holds no data itself, so it is the one
//! page served without a token; it reads the admin token from the URL
//! fragment (`/dashboard#token=…`, never sent to the server) or asks for it,
//! and then uses the API and the event stream like any client.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

use super::AppState;

const PAGE: &str = include_str!("../../dashboard/index.html");

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::HeaderName::from_static("content-security-policy"),
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        PAGE,
    )
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/dashboard", get(page)).route("/", get(|| async { Redirect::temporary("/dashboard") }))
}
