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

/// Python (componentize-py): `app.py`, `test_app.py` (unittest against the
/// generated bindings, with the host stubbed).
const PYTHON: Scaffold = Scaffold {
    shared: &[("README.md", template!("python/README.md")), (".gitignore", template!("python/gitignore"))],
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

/// JavaScript (jco, QuickJS backend): the logic in `logic.js` (plain
/// JavaScript, tested with `node --test`), the world's exports in
/// `plugin.js`, bundled into the component by jco.
const JS: Scaffold = Scaffold {
    shared: &[
        ("package.json", template!("js/package.json")),
        ("README.md", template!("js/README.md")),
        (".gitignore", template!("js/gitignore")),
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

/// C (clang + wasi-libc): `plugin.c` and a Makefile whose `test` target
/// builds the component and has the host check it.
const C: Scaffold = Scaffold {
    shared: &[
        ("Makefile", template!("c/Makefile")),
        ("README.md", template!("c/README.md")),
        (".gitignore", template!("c/gitignore")),
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
