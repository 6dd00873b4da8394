//! The `wasmtime serve` side of the HTTP benchmark: answers every request
//! with a fixed body, as the trivial kaizen unit (echo) does.

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wasip2::http::proxy::export!(Hello);

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let resp = OutgoingResponse::new(Fields::new());
        let body = resp.body().expect("response body");
        ResponseOutparam::set(response_out, Ok(resp));
        let out = body.write().expect("body stream");
        out.blocking_write_and_flush(b"1.0.0:hello").expect("write");
        drop(out);
        OutgoingBody::finish(body, None).expect("finish");
    }
}
