//! The tunable domains and the unit cube the surrogate works in.
//!
//! Every knob maps to one or more coordinates in [0, 1]: integers and floats
//! linearly, or logarithmically when their domain says so (a cache of 64 vs
//! 128 entries is as different as 8 192 vs 16 384); a boolean to 0 or 1; a
//! one-of choice to a one-hot block (choices have no order). Decoding rounds
//! to the domain, so that every point the optimiser considers is a config the
//! unit could run, and two points that round to the same config are one.

use std::collections::BTreeMap;

/// A knob's declared range of values.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// Integers from `min` to `max` inclusive. With `log`, steps are spaced
    /// geometrically from `min` (`log` with `min ≤ 0` spaces `x − min + 1`).
    Int {
        min: i64,
        max: i64,
        log: bool,
    },
    /// Reals from `min` to `max`. With `log`, `min` must be positive.
    Float {
        min: f64,
        max: f64,
        log: bool,
    },
    Bool,
    /// One of these names; no order between them.
    Choice(Vec<String>),
}

/// One tunable: its name, as in the unit's config, and its domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Knob {
    pub name: String,
    pub domain: Domain,
}

/// A tunable's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Choice(String),
}

/// A unit's configuration: tunable name → value. Keys that are not among the
/// knobs being tuned are carried through untouched.
pub type Config = BTreeMap<String, Value>;

/// What is wrong with the knobs or with a config given against them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpaceError {
    #[error("no knobs to tune")]
    NoKnobs,
    #[error("knob `{0}` is declared twice")]
    DuplicateKnob(String),
    #[error("knob `{knob}`: {reason}")]
    BadDomain { knob: String, reason: String },
    #[error("{config}: knob `{knob}` has no value")]
    MissingValue { config: String, knob: String },
    #[error("{config}: knob `{knob}` has {found}, its domain wants {wanted}")]
    WrongType { config: String, knob: String, found: String, wanted: &'static str },
}

/// The knobs as coordinates of the unit cube.
#[derive(Debug, Clone)]
pub struct Space {
    knobs: Vec<Knob>,
    /// Index of each knob's first coordinate.
    offsets: Vec<usize>,
    dims: usize,
}

/// Two coordinates of a continuous knob closer than this are the same config
/// (a float knob has no rounding to make them equal).
const FLOAT_SAME: f64 = 1e-3;

impl Space {
    /// Checks the knobs: at least one, unique names, non-empty ranges.
    pub fn new(knobs: &[Knob]) -> Result<Space, SpaceError> {
        if knobs.is_empty() {
            return Err(SpaceError::NoKnobs);
        }
        let mut offsets = Vec::with_capacity(knobs.len());
        let mut dims = 0;
        for (i, knob) in knobs.iter().enumerate() {
            if knobs[..i].iter().any(|k| k.name == knob.name) {
                return Err(SpaceError::DuplicateKnob(knob.name.clone()));
            }
            let bad = |reason: String| SpaceError::BadDomain { knob: knob.name.clone(), reason };
            match &knob.domain {
                Domain::Int { min, max, .. } if min >= max => {
                    return Err(bad(format!("min {min} is not below max {max}")));
                }
                Domain::Float { min, max, log } => {
                    if !(min.is_finite() && max.is_finite() && min < max) {
                        return Err(bad(format!("min {min} is not below max {max}")));
                    }
                    if *log && *min <= 0.0 {
                        return Err(bad(format!("a log scale needs min > 0, got {min}")));
                    }
                }
                Domain::Choice(names) if names.len() < 2 => {
                    return Err(bad("a choice needs at least two names".into()));
                }
                Domain::Choice(names) => {
                    if let Some(dup) = names.iter().enumerate().find(|(j, n)| names[..*j].contains(n)) {
                        return Err(bad(format!("choice `{}` is listed twice", dup.1)));
                    }
                }
                _ => {}
            }
            offsets.push(dims);
            dims += match &knob.domain {
                Domain::Choice(names) => names.len(),
                _ => 1,
            };
        }
        Ok(Space { knobs: knobs.to_vec(), offsets, dims })
    }

    /// Coordinates of the cube.
    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn knobs(&self) -> &[Knob] {
        &self.knobs
    }

    /// `config`'s point in the cube. A value outside its domain (bounds
    /// tightened since it ran) is clamped to it; a missing knob or a value of
    /// the wrong type is an error naming `what` (e.g. "trial 3's candidate").
    pub fn encode(&self, config: &Config, what: &str) -> Result<Vec<f64>, SpaceError> {
        let mut x = vec![0.0; self.dims];
        for (knob, &at) in self.knobs.iter().zip(&self.offsets) {
            let value = config
                .get(&knob.name)
                .ok_or_else(|| SpaceError::MissingValue { config: what.to_string(), knob: knob.name.clone() })?;
            let wrong = |wanted| SpaceError::WrongType {
                config: what.to_string(),
                knob: knob.name.clone(),
                found: format!("{value:?}"),
                wanted,
            };
            match (&knob.domain, value) {
                (Domain::Int { min, max, log }, Value::Int(v)) => {
                    x[at] = int_to_unit(*v, *min, *max, *log);
                }
                (Domain::Float { min, max, log }, Value::Float(v)) if v.is_finite() => {
                    x[at] = float_to_unit(*v, *min, *max, *log);
                }
                (Domain::Float { min, max, log }, Value::Int(v)) => {
                    x[at] = float_to_unit(*v as f64, *min, *max, *log);
                }
                (Domain::Bool, Value::Bool(v)) => x[at] = f64::from(u8::from(*v)),
                (Domain::Choice(names), Value::Choice(v)) => {
                    let i = names.iter().position(|n| n == v).ok_or_else(|| wrong("one of its choices"))?;
                    x[at + i] = 1.0;
                }
                (Domain::Int { .. }, _) => return Err(wrong("an integer")),
                (Domain::Float { .. }, _) => return Err(wrong("a finite number")),
                (Domain::Bool, _) => return Err(wrong("a boolean")),
                (Domain::Choice(_), _) => return Err(wrong("one of its choices")),
            }
        }
        Ok(x)
    }

    /// The config nearest to point `x`: each coordinate clamped to [0, 1],
    /// integers rounded, a boolean at ½, a choice by its largest coordinate.
    pub fn decode(&self, x: &[f64]) -> Config {
        self.knobs
            .iter()
            .zip(&self.offsets)
            .map(|(knob, &at)| {
                let u = x[at].clamp(0.0, 1.0);
                let value = match &knob.domain {
                    Domain::Int { min, max, log } => Value::Int(unit_to_int(u, *min, *max, *log)),
                    Domain::Float { min, max, log } => Value::Float(unit_to_float(u, *min, *max, *log)),
                    Domain::Bool => Value::Bool(u >= 0.5),
                    Domain::Choice(names) => {
                        let block = &x[at..at + names.len()];
                        // The first of equal coordinates: deterministic.
                        let best = (0..names.len()).fold(0, |b, i| if block[i] > block[b] { i } else { b });
                        Value::Choice(names[best].clone())
                    }
                };
                (knob.name.clone(), value)
            })
            .collect()
    }

    /// `x` moved onto the nearest config the domains allow.
    pub fn round(&self, x: &[f64]) -> Vec<f64> {
        self.encode(&self.decode(x), "a decoded point").expect("a decoded config always encodes")
    }

    /// Whether two rounded points are the same config.
    pub fn same(&self, a: &[f64], b: &[f64]) -> bool {
        self.knobs.iter().zip(&self.offsets).all(|(knob, &at)| match knob.domain {
            Domain::Float { .. } => (a[at] - b[at]).abs() < FLOAT_SAME,
            Domain::Choice(ref names) => (at..at + names.len()).all(|i| a[i] == b[i]),
            _ => (a[at] - b[at]).abs() < 1e-12,
        })
    }

    /// A uniform point of the cube (a choice's block gets one random hot
    /// coordinate), from `u`, a source of uniform draws in [0, 1).
    pub fn sample(&self, mut u: impl FnMut() -> f64) -> Vec<f64> {
        let mut x = vec![0.0; self.dims];
        for (knob, &at) in self.knobs.iter().zip(&self.offsets) {
            match &knob.domain {
                Domain::Choice(names) => {
                    let i = ((u() * names.len() as f64) as usize).min(names.len() - 1);
                    x[at + i] = 1.0;
                }
                _ => x[at] = u(),
            }
        }
        x
    }

    /// The coordinates of knob `index` (one, or a choice's block).
    pub fn coordinates(&self, index: usize) -> std::ops::Range<usize> {
        let at = self.offsets[index];
        at..at
            + match &self.knobs[index].domain {
                Domain::Choice(names) => names.len(),
                _ => 1,
            }
    }
}

/// Distance from `min` on a log scale: `ln(x − min + 1)`, 0 at `min`.
fn log_span(x: f64, min: f64) -> f64 {
    (x - min + 1.0).ln()
}

fn int_to_unit(v: i64, min: i64, max: i64, log: bool) -> f64 {
    let v = v.clamp(min, max) as f64;
    let (min, max) = (min as f64, max as f64);
    if log { log_span(v, min) / log_span(max, min) } else { (v - min) / (max - min) }
}

fn unit_to_int(u: f64, min: i64, max: i64, log: bool) -> i64 {
    let (lo, hi) = (min as f64, max as f64);
    let v = if log {
        // Rounded in the log scale: the integer nearest on that scale.
        let v = (u * log_span(hi, lo)).exp() + lo - 1.0;
        let (down, up) = (v.floor(), v.ceil());
        if (log_span(v, lo) - log_span(down, lo)).abs() <= (log_span(up, lo) - log_span(v, lo)).abs() {
            down
        } else {
            up
        }
    } else {
        (lo + u * (hi - lo)).round()
    };
    (v as i64).clamp(min, max)
}

fn float_to_unit(v: f64, min: f64, max: f64, log: bool) -> f64 {
    let v = v.clamp(min, max);
    if log { (v / min).ln() / (max / min).ln() } else { (v - min) / (max - min) }
}

fn unit_to_float(u: f64, min: f64, max: f64, log: bool) -> f64 {
    let v = if log { min * ((max / min).ln() * u).exp() } else { min + u * (max - min) };
    v.clamp(min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knobs() -> Vec<Knob> {
        vec![
            Knob { name: "chunk".into(), domain: Domain::Int { min: 1, max: 4096, log: true } },
            Knob { name: "cache".into(), domain: Domain::Int { min: 0, max: 65_536, log: true } },
            Knob { name: "ratio".into(), domain: Domain::Float { min: 0.5, max: 2.0, log: false } },
            Knob { name: "fast".into(), domain: Domain::Bool },
            Knob { name: "mode".into(), domain: Domain::Choice(vec!["a".into(), "b".into(), "c".into()]) },
        ]
    }

    /// Every point of the cube decodes to a config within the declared
    /// bounds, integers to integers, and encodes back into the cube.
    #[test]
    fn decoded_points_stay_in_bounds() {
        let space = Space::new(&knobs()).unwrap();
        assert_eq!(space.dims(), 7);
        let mut state = 1u64;
        let mut u = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..2_000 {
            let mut x = space.sample(&mut u);
            x[0] = x[0] * 1.4 - 0.2; // beyond the cube too
            let config = space.decode(&x);
            let Value::Int(chunk) = config["chunk"] else { panic!("{config:?}") };
            let Value::Int(cache) = config["cache"] else { panic!("{config:?}") };
            let Value::Float(ratio) = config["ratio"] else { panic!("{config:?}") };
            assert!((1..=4096).contains(&chunk) && (0..=65_536).contains(&cache), "{config:?}");
            assert!((0.5..=2.0).contains(&ratio));
            let back = space.encode(&config, "test").unwrap();
            assert!(back.iter().all(|c| (0.0..=1.0).contains(c)));
            assert_eq!(space.decode(&back), config);
        }
        // The ends of a log scale are reached exactly.
        assert_eq!(space.decode(&[0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])["cache"], Value::Int(0));
        assert_eq!(space.decode(&[1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0])["cache"], Value::Int(65_536));
        assert_eq!(space.decode(&[1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0])["chunk"], Value::Int(4096));
    }

    /// A log scale spaces values geometrically: 64 sits halfway between 8 and 512.
    #[test]
    fn a_log_scale_is_geometric() {
        let space = Space::new(&knobs()[..1]).unwrap();
        let at = |v: i64| space.encode(&[("chunk".to_string(), Value::Int(v))].into(), "t").unwrap()[0];
        assert!(((at(8) + at(512)) / 2.0 - at(64)).abs() < 1e-12);
    }

    /// Bad knobs and bad configs are refused naming what is wrong.
    #[test]
    fn bad_knobs_and_configs_are_named() {
        let flat = Knob { name: "n".into(), domain: Domain::Int { min: 3, max: 3, log: false } };
        assert!(matches!(Space::new(&[flat]), Err(SpaceError::BadDomain { knob, .. }) if knob == "n"));
        let log0 = Knob { name: "f".into(), domain: Domain::Float { min: 0.0, max: 1.0, log: true } };
        assert!(Space::new(&[log0]).unwrap_err().to_string().contains("min > 0"));
        let space = Space::new(&knobs()).unwrap();
        let mut config = space.decode(&[0.5; 7]);
        config.insert("fast".into(), Value::Int(1));
        let err = space.encode(&config, "the incumbent").unwrap_err().to_string();
        assert!(err.contains("the incumbent") && err.contains("`fast`") && err.contains("boolean"), "{err}");
        config.remove("fast");
        assert_eq!(
            space.encode(&config, "the incumbent").unwrap_err(),
            SpaceError::MissingValue { config: "the incumbent".into(), knob: "fast".into() }
        );
    }
}
