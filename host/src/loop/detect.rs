//! Step 2, detect: every detector slot's current version looks at the
//! sample; each returns findings. A detector that fails is reported, not
//! fatal.

use super::Ctx;
use super::sample::Sample;
use crate::runtime::types::{Finding, PluginKind};

/// Findings by detector name, and the detectors' errors.
pub struct Detected {
    pub findings: Vec<(String, Finding)>,
    pub errors: Vec<String>,
}

pub async fn detect(ctx: &Ctx, sample: &Sample) -> Detected {
    let mut out = Detected { findings: Vec::new(), errors: Vec::new() };
    for slot in ctx.runtime.slots_of(PluginKind::Detector) {
        let (det, input) = (slot.current(), sample.input.clone());
        match tokio::task::spawn_blocking(move || det.detect(&input)).await {
            Ok(Ok(found)) => out.findings.extend(found.into_iter().map(|f| (slot.name().to_string(), f))),
            Ok(Err(e)) => out.errors.push(format!("{}: {e}", slot.name())),
            Err(e) => out.errors.push(format!("{}: {e}", slot.name())),
        }
    }
    out
}
