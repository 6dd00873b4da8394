//! Test unit `fetcher`: GETs the `http://…` URL its request holds through
//! `wasi:http/outgoing-handler` and answers `STATUS BODY`; a request the
//! host refuses answers `invalid-input` with the `wasi:http` error code
//! (`HttpRequestDenied` when the host is not granted). It declares the
//! `http:127.0.0.1` capability and nothing else.

use kaizen_sdk::{CallContext, Capability, Config, ErrorClass, PluginInfo, PluginKind, Unit, UnitError};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

pub struct Fetcher;

impl Unit for Fetcher {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "fetcher",
            PluginKind::Unit,
            env!("CARGO_PKG_VERSION"),
            "Test unit making outgoing HTTP requests",
        )
        .needs(Capability::Http("127.0.0.1".into()))
    }

    fn invoke(_ctx: &CallContext, request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        let url = std::str::from_utf8(request).map_err(|_| refused("the URL is not UTF-8"))?;
        let (status, body) = get(url.trim()).map_err(|e| refused(&e))?;
        let mut out = format!("{status} ").into_bytes();
        out.extend(body);
        Ok(out)
    }
}

fn refused(message: &str) -> UnitError {
    UnitError::new(ErrorClass::InvalidInput, message)
}

/// `GET url` (`http://AUTHORITY/PATH`): the status and the whole body.
fn get(url: &str) -> Result<(u16, Vec<u8>), String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request.set_scheme(Some(&Scheme::Http)).map_err(|()| "scheme refused")?;
    request.set_authority(Some(authority)).map_err(|()| "authority refused")?;
    request.set_path_with_query(Some(path)).map_err(|()| "path refused")?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = pending.get().ok_or("no response")?.map_err(|()| "response taken")?.map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response.consume().map_err(|()| "body taken")?;
    let stream = body.stream().map_err(|()| "stream taken")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend(chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
        }
    }
    Ok((status, bytes))
}

kaizen_sdk::export_unit!(Fetcher);
