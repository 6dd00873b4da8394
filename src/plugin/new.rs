//! `kaizen plugin new KIND NAME [--lang rust|python|js|c]`: a ready plugin
//! with a working example and its own passing test, so an author starts
//! from something green and edits. Rust (the default) is a crate on the
//! SDK; Python and JavaScript projects carry a copy of their SDK package
//! (`sdk/python`, `sdk/js`); the other languages use the toolchains of
//! `plugins/examples/` and carry the WIT (embedded in this binary) in `wit/`,
//! except JavaScript, which builds against its SDK's WIT. The files come
//! from [`super::templates`].

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use super::templates::{self, Vars};
use super::{Kind, Lang, write_wit};

#[derive(Args)]
pub struct NewArgs {
    /// What the plugin is: a detector, a recovery strategy or a unit.
    kind: Kind,
    /// Plugin name: lowercase letters, digits and `-`, starting with a letter.
    name: String,
    /// Where to create the crate (default: ./NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The plugin's language.
    #[arg(long, value_enum, default_value = "rust")]
    lang: Lang,
    /// Rust: the kaizen-sdk crate to depend on (default: this checkout's `sdk/`).
    #[arg(long, env = "KAIZEN_SDK_PATH")]
    sdk: Option<PathBuf>,
}

/// The SDK of the checkout this binary was built from.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sdk");

pub fn run(a: NewArgs) -> anyhow::Result<()> {
    if !kaizen_host::runtime::validate::valid_name(&a.name) {
        bail!("invalid plugin name `{}`: use 1-64 lowercase letters, digits and `-`, starting with a letter", a.name);
    }
    let dir = a.dir.clone().unwrap_or_else(|| PathBuf::from(&a.name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty", dir.display());
    }
    let what = a.kind.world();
    match a.lang {
        Lang::Rust => {
            let sdk = sdk_path(a.sdk.as_deref())?;
            write(&dir, a.lang, &Vars { name: &a.name, kind: a.kind, sdk: &sdk })?;
            out!("created {what} plugin `{}` ({}) in {}", a.name, a.lang.label(), dir.display());
            out!("  cd {}", dir.display());
            out!("  cargo test                                    # its own test, natively");
            out!("  cargo build --release --target wasm32-wasip2  # the component");
            out!("  kaizen plugin check target/wasm32-wasip2/release/{}.wasm", a.name.replace('-', "_"));
        }
        lang => {
            write(&dir, lang, &Vars { name: &a.name, kind: a.kind, sdk: "" })?;
            // JavaScript builds against the copy of its SDK's WIT, which
            // holds the contract.
            if lang != Lang::Js {
                write_wit(&dir)?;
            }
            out!("created {what} plugin `{}` ({}) in {}; see its README.md", a.name, lang.label(), dir.display());
        }
    }
    Ok(())
}

/// The SDK a Rust scaffold depends on, as a path for its Cargo.toml.
fn sdk_path(given: Option<&Path>) -> anyhow::Result<String> {
    let sdk = given.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(BUILT_SDK));
    let sdk = sdk.canonicalize().with_context(|| {
        format!("the SDK is not at {} — pass --sdk PATH (the kaizen checkout's sdk/ folder)", sdk.display())
    })?;
    if !sdk.join("Cargo.toml").exists() {
        bail!("{} holds no Cargo.toml: pass --sdk PATH to the kaizen checkout's sdk/ folder", sdk.display());
    }
    Ok(sdk.display().to_string().replace('\\', "/"))
}

/// Write the scaffold's files, filled, into `dir`.
fn write(dir: &Path, lang: Lang, vars: &Vars) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, template) in templates::files(lang, vars.kind) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, templates::fill(template, vars))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
