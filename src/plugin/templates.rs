//! The scaffolds of `kaizen plugin new`: real files under `templates/<lang>/`
//! (shared by every kind) and `templates/<lang>/<kind>/` (the kind's code),
//! embedded with `include_str!` so that they can be read, linted and diffed
//! as the code they are.
//!
//! Substitution is plain text replacement of these placeholders, everywhere
//! in every file ([`fill`]); they are spelled like identifiers so that most
//! templates stay valid code in their language:
//!
//! | placeholder    | becomes                                    | e.g.          |
//! |----------------|--------------------------------------------|---------------|
//! | `__NAME__`     | the plugin's name                          | `slow-calls`  |
//! | `__TYPE__`     | the name as a Rust type                    | `SlowCalls`   |
//! | `__FILE__`     | the name as a file stem (`-` → `_`)        | `slow_calls`  |
//! | `__WORLD__`    | the kind's world                           | `detector`    |
//! | `__CONTRACT__` | the contract version                       | `0.1.0`       |
//! | `__SDK__`      | the kaizen-sdk crate's path (Rust only)    | `/src/sdk`    |
//!
//! Files are stored under the name they are written as, except `gitignore`
//! (written as `.gitignore`: a real one would apply to this folder) and
//! `Cargo.toml.in` (written as `Cargo.toml`: a real one would make the
//! folder a package to cargo).

use super::{CONTRACT_VERSION, Kind, Lang};

/// `include_str!` of a file under `templates/`.
macro_rules! template {
    ($path:literal) => {
        include_str!(concat!("templates/", $path))
    };
}

/// A file to write (its path in the new plugin) and its template.
pub type File = (&'static str, &'static str);

/// One language's scaffold.
struct Scaffold {
    /// Files every kind gets.
    shared: &'static [File],
    detector: &'static [File],
    recovery: &'static [File],
    unit: &'static [File],
}

const RUST: Scaffold = Scaffold {
    shared: &[
        ("Cargo.toml", template!("rust/Cargo.toml.in")),
        ("README.md", template!("rust/README.md")),
        (".gitignore", template!("rust/gitignore")),
    ],
    detector: &[("src/lib.rs", template!("rust/detector/lib.rs"))],
    recovery: &[("src/lib.rs", template!("rust/recovery/lib.rs"))],
    unit: &[("src/lib.rs", template!("rust/unit/lib.rs"))],
};

/// `include_str!` of a file of the Python SDK package (`sdk/python`).
macro_rules! python_sdk {
    ($file:literal) => {
        (concat!("kaizen_sdk/", $file), include_str!(concat!("../../sdk/python/src/kaizen_sdk/", $file)))
    };
}

/// Python (componentize-py): `app.py` on the `kaizen_sdk` package (a copy,
/// so that the project builds with nothing but componentize-py), and
/// `test_app.py` (unittest, natively, with the SDK's stand-ins for the host).
const PYTHON: Scaffold = Scaffold {
    shared: &[
        ("README.md", template!("python/README.md")),
        (".gitignore", template!("python/gitignore")),
        python_sdk!("__init__.py"),
        python_sdk!("config.py"),
        python_sdk!("errors.py"),
        python_sdk!("host.py"),
        python_sdk!("log.py"),
        python_sdk!("messagepack.py"),
        python_sdk!("payload.py"),
        python_sdk!("testing.py"),
        python_sdk!("worlds.py"),
    ],
    detector: &[
        ("app.py", template!("python/detector/app.py")),
        ("test_app.py", template!("python/detector/test_app.py")),
    ],
    recovery: &[
        ("app.py", template!("python/recovery/app.py")),
        ("test_app.py", template!("python/recovery/test_app.py")),
    ],
    unit: &[("app.py", template!("python/unit/app.py")), ("test_app.py", template!("python/unit/test_app.py"))],
};

/// `include_str!` of a file of the JavaScript SDK package (`sdk/js`).
macro_rules! js_sdk {
    ($file:literal) => {
        (concat!("kaizen-sdk/", $file), include_str!(concat!("../../sdk/js/", $file)))
    };
}

/// JavaScript (jco, QuickJS backend): the plugin in `logic.js` on the
/// `kaizen-sdk` package (a copy, installed from the folder by npm, so that
/// the project needs nothing from the registry but jco), tested with
/// `node --test`; the world's exports in `plugin.js`, bundled into the
/// component by jco against the SDK's WIT.
const JS: Scaffold = Scaffold {
    shared: &[
        ("package.json", template!("js/package.json")),
        ("README.md", template!("js/README.md")),
        (".gitignore", template!("js/gitignore")),
        js_sdk!("package.json"),
        js_sdk!("README.md"),
        js_sdk!("index.js"),
        js_sdk!("component.js"),
        js_sdk!("testing.js"),
        js_sdk!("src/config.js"),
        js_sdk!("src/console.js"),
        js_sdk!("src/errors.js"),
        js_sdk!("src/host.js"),
        js_sdk!("src/log.js"),
        js_sdk!("src/messagepack.js"),
        js_sdk!("src/payload.js"),
        js_sdk!("src/utf8.js"),
        js_sdk!("src/worlds.js"),
        js_sdk!("wit/worlds.wit"),
        js_sdk!("wit/deps/kaizen-plugin/types.wit"),
        js_sdk!("wit/deps/kaizen-plugin/worlds.wit"),
        js_sdk!("wit/deps/wasi-cli/stdio.wit"),
        js_sdk!("wit/deps/wasi-io/io.wit"),
    ],
    detector: &[
        ("logic.js", template!("js/detector/logic.js")),
        ("plugin.js", template!("js/detector/plugin.js")),
        ("logic.test.js", template!("js/detector/logic.test.js")),
    ],
    recovery: &[
        ("logic.js", template!("js/recovery/logic.js")),
        ("plugin.js", template!("js/recovery/plugin.js")),
        ("logic.test.js", template!("js/recovery/logic.test.js")),
    ],
    unit: &[
        ("logic.js", template!("js/unit/logic.js")),
        ("plugin.js", template!("js/unit/plugin.js")),
        ("logic.test.js", template!("js/unit/logic.test.js")),
    ],
};

/// C (clang + wasi-libc): `plugin.c`, a JSON reader (`kaizen_json.h` over
/// the vendored jsmn, with its native test) and a Makefile whose `test`
/// target runs that test, builds the component and has the host check it.
const C: Scaffold = Scaffold {
    shared: &[
        ("Makefile", template!("c/Makefile")),
        ("README.md", template!("c/README.md")),
        (".gitignore", template!("c/gitignore")),
        ("kaizen_json.h", template!("c/kaizen_json.h")),
        ("test_json.c", template!("c/test_json.c")),
        ("jsmn.h", template!("c/jsmn.h")),
        ("LICENSE.jsmn", template!("c/LICENSE.jsmn")),
    ],
    detector: &[("plugin.c", template!("c/detector/plugin.c"))],
    recovery: &[("plugin.c", template!("c/recovery/plugin.c"))],
    unit: &[("plugin.c", template!("c/unit/plugin.c"))],
};

/// The files of a `kind` plugin in `lang`, unfilled.
pub fn files(lang: Lang, kind: Kind) -> impl Iterator<Item = File> {
    let scaffold = match lang {
        Lang::Rust => &RUST,
        Lang::Python => &PYTHON,
        Lang::Js => &JS,
        Lang::C => &C,
    };
    let own = match kind {
        Kind::Detector => scaffold.detector,
        Kind::Recovery => scaffold.recovery,
        Kind::Unit => scaffold.unit,
    };
    scaffold.shared.iter().chain(own).copied()
}

/// What the placeholders stand for in one scaffold.
pub struct Vars<'a> {
    pub name: &'a str,
    pub kind: Kind,
    /// The kaizen-sdk crate's path, for Rust scaffolds (empty otherwise).
    pub sdk: &'a str,
}

/// `template` with every placeholder replaced.
pub fn fill(template: &str, v: &Vars) -> String {
    let ty = rust_type(v.name);
    let file = v.name.replace('-', "_");
    [
        ("__NAME__", v.name),
        ("__TYPE__", ty.as_str()),
        ("__FILE__", file.as_str()),
        ("__WORLD__", v.kind.world()),
        ("__CONTRACT__", CONTRACT_VERSION),
        ("__SDK__", v.sdk),
    ]
    .into_iter()
    .fold(template.to_string(), |text, (placeholder, value)| text.replace(placeholder, value))
}

/// `slow-calls` → `SlowCalls`.
fn rust_type(name: &str) -> String {
    name.split('-')
        .map(|p| {
            let mut c = p.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use clap::ValueEnum;

    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        for &lang in Lang::value_variants() {
            for &kind in Kind::value_variants() {
                let vars = Vars { name: "slow-calls", kind, sdk: "/sdk" };
                for (path, template) in files(lang, kind) {
                    let text = fill(template, &vars);
                    let parts: Vec<&str> = text.split("__").collect();
                    let inner = parts.get(1..parts.len().saturating_sub(1)).unwrap_or_default();
                    let left = inner.iter().find(|w| is_placeholder(w));
                    assert!(left.is_none(), "{path} ({}) keeps __{}__:\n{text}", kind.world(), left.unwrap());
                }
            }
        }
    }

    /// The scaffolds carry every file of the SDK packages they copy, and
    /// the JavaScript SDK's copy of the contract is the contract.
    #[test]
    fn the_scaffolds_carry_the_whole_sdk_packages() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (lang, kind, package, copied) in [
            (Lang::Python, Kind::Unit, "sdk/python/src/kaizen_sdk", "kaizen_sdk/"),
            (Lang::Js, Kind::Unit, "sdk/js", "kaizen-sdk/"),
        ] {
            let carried: BTreeSet<String> =
                files(lang, kind).filter_map(|(path, _)| path.strip_prefix(copied).map(str::to_string)).collect();
            let shipped: BTreeSet<String> = package_files(&root.join(package))
                .into_iter()
                .filter(|p| !p.starts_with("test/") && !p.starts_with("node_modules/") && !p.contains("__pycache__"))
                .collect();
            assert_eq!(carried, shipped, "{package}: the scaffold's copy differs from the package");
        }
        for name in ["types.wit", "worlds.wit"] {
            let contract = std::fs::read_to_string(root.join("wit/v0.2").join(name)).unwrap();
            let copy = std::fs::read_to_string(root.join("sdk/js/wit/deps/kaizen-plugin").join(name)).unwrap();
            assert_eq!(contract, copy, "sdk/js/wit/deps/kaizen-plugin/{name} is not wit/v0.2/{name}");
        }
    }

    /// Files under `dir`, as `/`-separated paths relative to it.
    fn package_files(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                out.extend(package_files(&path).into_iter().map(|p| format!("{name}/{p}")));
            } else {
                out.push(name);
            }
        }
        out
    }

    /// `NAME` between two `__`: uppercase letters (not `pycache` in `__pycache__`).
    fn is_placeholder(word: &str) -> bool {
        !word.is_empty() && word.chars().all(|c| c.is_ascii_uppercase())
    }

    #[test]
    fn names_become_types_and_files() {
        let vars = Vars { name: "slow-calls", kind: Kind::Recovery, sdk: "" };
        assert_eq!(fill("__TYPE__ __FILE__ __WORLD__", &vars), "SlowCalls slow_calls recovery");
        assert_eq!(fill("kaizen:plugin/host@__CONTRACT__", &vars), format!("kaizen:plugin/host@{CONTRACT_VERSION}"));
    }
}
