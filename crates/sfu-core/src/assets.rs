//! The browser SDK (`/sdk/...`) and the demo page (`/`), embedded at build
//! time from `web/` so the binary serves them with no files beside it.

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Serve an embedded file; `/` is the demo's `index.html`.
pub async fn serve(uri: Uri) -> Response {
    let path = match uri.path() {
        "/" | "" => "/index.html",
        p => p,
    };
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, bytes, ctype)) => {
            let mut r = (StatusCode::OK, *bytes).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            r
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
