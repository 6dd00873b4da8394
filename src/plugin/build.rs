//! Build helpers for plugins written in languages without a component
//! toolchain of their own (C, and anything else that compiles to a core
//! WebAssembly module): `kaizen plugin bindings` writes the C bindings of a
//! world (wit-bindgen's C generator) and the WIT itself, and
//! `kaizen plugin componentize` wraps a core module built against them into
//! a component, adapting WASI preview 1 with the reactor adapter that ships
//! in the `wasi-preview1-component-adapter-provider` crate (the same bytes
//! `wasm-tools component new --adapt` would use).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use super::{Kind, write_wit};

#[derive(Args)]
pub struct BindingsArgs {
    /// The world to bind.
    world: Kind,
    /// Output folder: `<world>.h`, `<world>.c`, `<world>_component_type.o`
    /// and `wit/` (the contract, for other toolchains).
    #[arg(long, short, default_value = ".")]
    out: PathBuf,
}

#[derive(Args)]
pub struct ComponentizeArgs {
    /// A core module built against `kaizen plugin bindings` output.
    core: PathBuf,
    /// The component to write.
    #[arg(long, short)]
    out: PathBuf,
}

pub fn bindings(a: BindingsArgs) -> anyhow::Result<()> {
    let wit = write_wit(&a.out)?;
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(&wit).context("the embedded WIT does not parse")?;
    let world = resolve.select_world(&[pkg], Some(a.world.world()))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default().build().generate(&mut resolve, world, &mut files)?;
    for (name, bytes) in files.iter() {
        let path = a.out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        out!("wrote {}", path.display());
    }
    out!("wrote {}", wit.display());
    Ok(())
}

/// Wrap a core module into a component with the WASI preview 1 reactor
/// adapter; the component type comes from the custom section the bindings'
/// `*_component_type.o` put in the module.
pub fn componentize_bytes(core: &[u8]) -> anyhow::Result<Vec<u8>> {
    if core.get(..4) != Some(b"\0asm") {
        bail!("not a WebAssembly module (no `\\0asm` header)");
    }
    wit_component::ComponentEncoder::default()
        .module(core)
        .context("the core module cannot be used (was it linked with the bindings' *_component_type.o?)")?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()
        .context("cannot build the component")
}

pub fn componentize(a: ComponentizeArgs) -> anyhow::Result<()> {
    let core = std::fs::read(&a.core).with_context(|| format!("cannot read {}", a.core.display()))?;
    let component = componentize_bytes(&core).with_context(|| a.core.display().to_string())?;
    std::fs::write(&a.out, &component).with_context(|| format!("cannot write {}", a.out.display()))?;
    out!(
        "wrote {} ({} bytes); check it with `kaizen plugin check {}`",
        a.out.display(),
        component.len(),
        a.out.display()
    );
    Ok(())
}
