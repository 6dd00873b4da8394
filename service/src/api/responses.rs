//! Answers that every route of a kind can give, added to the document from
//! the route's own shape so that no annotation can forget them: the token
//! checks (401 on every route that takes a token; 403 on those only the
//! admin token may use, since the invoke token is the only other one) and
//! the body limit (413 on every route that reads a body).

use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

fn error(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
}

/// The security schemes an operation accepts, by name.
fn schemes(op: &Operation) -> Vec<String> {
    let Some(reqs) = &op.security else { return Vec::new() };
    reqs.iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .filter_map(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
        .flatten()
        .collect()
}

fn complete(op: &mut Operation) {
    let schemes = schemes(op);
    let responses = &mut op.responses.responses;
    if !schemes.is_empty() {
        responses.entry("401".into()).or_insert_with(|| {
            error("Missing or unknown token: send `Authorization: Bearer <token>` (code `unauthorized`)")
        });
        if !schemes.iter().any(|s| s == "invoke") {
            responses
                .entry("403".into())
                .or_insert_with(|| error("The invoke token on a route that needs the admin token (code `forbidden`)"));
        }
    }
    if op.request_body.is_some() {
        responses
            .entry("413".into())
            .or_insert_with(|| error("The body is over the size limit (`[http]` settings; code `payload-too-large`)"));
    }
}

/// Add the common answers to every operation of `api`.
pub fn add_common(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch] {
            if let Some(op) = op.as_mut() {
                complete(op);
            }
        }
    }
}
