//! Kaizen's tuner: proposes the next configuration of a unit's tunables to
//! canary, learning from the target's trial history.
//!
//! The method is Bayesian optimisation for noisy online experiments, after
//! Letham, Karrer, Ottoni & Bakshy, "Constrained Bayesian Optimization with
//! Noisy Experiments" (Bayesian Analysis 14(2), 2019), who tuned production
//! server settings through online experiments; here every step is guarded by
//! a canary and the judge. A Gaussian-process surrogate ([`gp`]: Matérn 5/2,
//! one length scale per knob, arm noise and a per-trial period effect, fitted
//! by marginal likelihood) models the log of the objective over the knobs
//! normalised to the unit cube ([`space`]: log-scaled where the domain says
//! so); the next config maximises expected improvement ([`acquisition`]) over
//! the best posterior mean among measured configs (or, as [`Method::NoisyEi`],
//! the noisy EI of Letham et al.); a scrambled Sobol start
//! covers the space before the surrogate is trusted ([`propose`]). No config
//! already measured — rolled back or not — is proposed again.
//!
//! Pure Rust, no I/O and no entropy: it builds for `wasm32-wasip2` and runs in
//! the plugin sandbox. Crates: `nalgebra` (Cholesky factorisation), `libm`
//! (`erfc` for the normal CDF), `sobol_burley` (Owen-scrambled Sobol points),
//! `rand_pcg` (a seeded PCG generator).

pub mod acquisition;
pub mod gp;
pub mod plugin;
pub mod propose;
pub mod space;

pub use propose::{
    MIN_GAIN_PCT, Method, NoProposal, Problem, ProblemError, Proposal, Trial, Verdict, propose, propose_with,
};
pub use space::{Config, Domain, Knob, Space, SpaceError, Value};
