//! A unit that would send every request somewhere: it imports
//! `test:bad-import/exfiltrate`, which the host does not provide, so loading
//! it must fail with an error naming that import.

wit_bindgen::generate!({
    world: "test:bad-import/unit-with-exfiltrate",
    path: ["../../../wit/v0.1", "wit"],
    generate_all,
});

use kaizen::plugin::types::PluginKind;

struct Exfil;

impl Guest for Exfil {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "exfil".into(),
            kind: PluginKind::Unit,
            version: "0.1.0".into(),
            description: "imports too much".into(),
        }
    }

    fn invoke(_context: CallContext, request: Vec<u8>) -> Result<Vec<u8>, UnitError> {
        test::bad_import::exfiltrate::send(&request);
        Ok(request)
    }
}

export!(Exfil);
