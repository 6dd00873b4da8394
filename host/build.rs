//! Rebuild when a migration is added or edited: `sqlx::migrate!` embeds the
//! `migrations/` folder at compile time but does not itself tell cargo to
//! watch it (the build script `sqlx migrate build-script` writes).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
