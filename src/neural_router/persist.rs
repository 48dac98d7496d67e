//! Saving and loading the learner as versioned JSON, atomically.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::types::Strategy;

use super::learner::{KindAccum, KindStats};
use super::model::{KIND_NAMES, KIND_SLOTS, Weights};
use super::{N_FEATURES, NeuralConfig, NeuralRouter, feature_names};

/// The `format_version` this build writes and accepts.
pub const WEIGHTS_FORMAT_VERSION: u64 = 2;

/// Why weights could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// Reading, writing, syncing or renaming `path` failed; check that its directory
    /// exists and is writable.
    #[error("weights file {path}: {source}")]
    Io {
        /// The file or directory the operation failed on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a complete weights document (truncated, corrupt, a field
    /// missing or of the wrong type).
    #[error("weights file is not valid weights json: {0}")]
    Parse(#[from] serde_json::Error),
    /// `format_version` is not the one this build reads; re-train or convert.
    #[error("weights format_version is {found}, expected {expected}")]
    Version {
        /// The version in the file.
        found: u64,
        /// [`WEIGHTS_FORMAT_VERSION`].
        expected: u64,
    },
    /// The weights were written for a different feature or strategy layout.
    #[error("weights {what} is {found}, expected {expected}")]
    Shape {
        /// Which part of the layout differs (e.g. `feature count`).
        what: String,
        /// What the file has.
        found: String,
        /// What this build needs.
        expected: String,
    },
    /// A number that must be finite is not (NaN and infinities are written as
    /// `null` by JSON encoders).
    #[error("weights {what} is {value}, must be a finite number")]
    NonFinite {
        /// Where the value is, e.g. `weights[2][17]`.
        what: String,
        /// The value, or `null`.
        value: String,
    },
}

/// The file layout, version 2 (16 class slots; version 1 files, with 4 kind slots, are
/// refused as `Version` and the binary falls back to a warm start).
#[derive(Debug, Serialize, Deserialize)]
struct WeightsFile {
    format_version: u64,
    n_features: usize,
    n_strategies: usize,
    feature_names: Vec<String>,
    strategies: Vec<Strategy>,
    sample_count: u64,
    avg_reward: Option<f64>,
    epsilon: Option<f64>,
    /// `None` stands for a non-finite number written as `null`.
    weights: Vec<Vec<Option<f64>>>,
    /// Feature mass each weight has been trained on (sets its step size).
    visits: Vec<Vec<Option<f64>>>,
    per_kind: Vec<KindStats>,
}

/// Reads only the version, so a future layout reports `Version`, not `Parse`.
#[derive(Deserialize)]
struct VersionProbe {
    format_version: u64,
}

fn shape(what: impl Into<String>, found: impl ToString, expected: impl ToString) -> WeightsError {
    WeightsError::Shape {
        what: what.into(),
        found: found.to_string(),
        expected: expected.to_string(),
    }
}

fn finite(what: impl Fn() -> String, v: Option<f64>) -> Result<f64, WeightsError> {
    match v {
        Some(x) if x.is_finite() => Ok(x),
        other => Err(WeightsError::NonFinite {
            what: what(),
            value: other.map_or_else(|| "null".to_owned(), |x| x.to_string()),
        }),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> WeightsError + '_ {
    move |source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl NeuralRouter {
    /// The learner as a version-1 weights document.
    ///
    /// # Errors
    ///
    /// [`WeightsError::NonFinite`] if a weight or statistic is not finite (nothing
    /// this crate does produces one).
    pub(crate) fn to_json(&self) -> Result<String, WeightsError> {
        let snap = self.snapshot();
        let weights = checked_matrix("weights", &self.weights)?;
        let visits = checked_matrix("visits", &self.visits)?;
        let file = WeightsFile {
            format_version: WEIGHTS_FORMAT_VERSION,
            n_features: N_FEATURES,
            n_strategies: Strategy::COUNT,
            feature_names: snap.feature_names,
            strategies: snap.strategies,
            sample_count: snap.sample_count,
            avg_reward: Some(finite(|| "avg_reward".to_owned(), Some(snap.avg_reward))?),
            epsilon: Some(finite(|| "epsilon".to_owned(), Some(snap.epsilon))?),
            weights,
            visits,
            per_kind: snap.per_kind,
        };
        Ok(serde_json::to_string_pretty(&file)?)
    }

    /// A learner restored from a weights document, with `cfg` as its learning
    /// parameters.
    ///
    /// # Errors
    ///
    /// [`WeightsError::Version`] for another `format_version`, [`WeightsError::Parse`]
    /// for text that is not a complete document, [`WeightsError::Shape`] when the
    /// feature or strategy layout differs from this build's, and
    /// [`WeightsError::NonFinite`] for a `null`, NaN or infinite number.
    pub(crate) fn from_json(s: &str, cfg: NeuralConfig) -> Result<NeuralRouter, WeightsError> {
        let probe: VersionProbe = serde_json::from_str(s)?;
        if probe.format_version != WEIGHTS_FORMAT_VERSION {
            return Err(WeightsError::Version {
                found: probe.format_version,
                expected: WEIGHTS_FORMAT_VERSION,
            });
        }
        let file: WeightsFile = serde_json::from_str(s)?;
        check_layout(&file)?;

        let weights = read_matrix("weights", &file.weights)?;
        let mut visits = read_matrix("visits", &file.visits)?;
        for v in visits.iter_mut().flatten() {
            *v = v.max(0.0);
        }
        let avg_reward = finite(|| "avg_reward".to_owned(), file.avg_reward)?;
        let epsilon = finite(|| "epsilon".to_owned(), file.epsilon)?;

        let mut kinds: [KindAccum; KIND_SLOTS] = Default::default();
        for (slot, (acc, stats)) in kinds.iter_mut().zip(&file.per_kind).enumerate() {
            if stats.kind != KIND_NAMES[slot] {
                return Err(shape(
                    format!("per_kind[{slot}].kind"),
                    &stats.kind,
                    KIND_NAMES[slot],
                ));
            }
            let n = stats.per_strategy_samples.len();
            let m = stats.per_strategy_avg_reward.len();
            if n != Strategy::COUNT || m != Strategy::COUNT {
                return Err(shape(
                    format!("per_kind[{slot}] per-strategy length"),
                    n.max(m),
                    Strategy::COUNT,
                ));
            }
            acc.samples = stats.samples;
            acc.avg_reward = finite(
                || format!("per_kind[{slot}].avg_reward"),
                Some(stats.avg_reward),
            )?;
            for i in 0..Strategy::COUNT {
                acc.per_strategy_samples[i] = stats.per_strategy_samples[i];
                acc.per_strategy_avg[i] = finite(
                    || format!("per_kind[{slot}].per_strategy_avg_reward[{i}]"),
                    Some(stats.per_strategy_avg_reward[i]),
                )?;
            }
            acc.recent[stats.preferred.index()] = 1.0;
        }
        Ok(NeuralRouter::from_parts(
            cfg,
            weights,
            visits,
            epsilon,
            file.sample_count,
            avg_reward,
            kinds,
        ))
    }

    /// Writes the weights document to `path` atomically: a temporary file in the
    /// same directory is written and synced, then renamed over `path`, then the
    /// directory is synced (best effort). A reader sees the old file or the new one,
    /// never a torn one.
    ///
    /// # Errors
    ///
    /// [`WeightsError::Io`] naming the path that could not be written, synced or
    /// renamed (the temporary file is removed); [`WeightsError::NonFinite`] as for
    /// `NeuralRouter::to_json`.
    pub fn save(&self, path: &Path) -> Result<(), WeightsError> {
        let json = self.to_json()?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "weights".to_owned());
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = write_synced(&tmp, json.as_bytes())
            .and_then(|()| fs::rename(&tmp, path).map_err(io_err(path)));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        // Persist the rename itself; not every platform can open a directory.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Reads a weights document written by [`NeuralRouter::save`].
    ///
    /// # Errors
    ///
    /// [`WeightsError::Io`] if `path` cannot be read, otherwise as for
    /// `NeuralRouter::from_json`.
    pub fn load(path: &Path, cfg: NeuralConfig) -> Result<NeuralRouter, WeightsError> {
        let bytes = fs::read(path).map_err(io_err(path))?;
        // Invalid UTF-8 is a corrupt document (a parse error), not an I/O problem.
        NeuralRouter::from_json(&String::from_utf8_lossy(&bytes), cfg)
    }
}

/// A matrix as JSON rows, refusing non-finite entries.
fn checked_matrix(name: &str, m: &Weights) -> Result<Vec<Vec<Option<f64>>>, WeightsError> {
    let mut rows = Vec::with_capacity(m.len());
    for (s, row) in m.iter().enumerate() {
        let mut out = Vec::with_capacity(row.len());
        for (f, &w) in row.iter().enumerate() {
            out.push(Some(finite(|| format!("{name}[{s}][{f}]"), Some(w))?));
        }
        rows.push(out);
    }
    Ok(rows)
}

/// JSON rows (shape already checked) as a matrix, refusing `null`s.
fn read_matrix(name: &str, rows: &[Vec<Option<f64>>]) -> Result<Weights, WeightsError> {
    let mut m: Weights = [[0.0; N_FEATURES]; Strategy::COUNT];
    for (s, (dst, src)) in m.iter_mut().zip(rows).enumerate() {
        for (f, (d, v)) in dst.iter_mut().zip(src).enumerate() {
            *d = finite(|| format!("{name}[{s}][{f}]"), *v)?;
        }
    }
    Ok(m)
}

/// Creates `path`, writes `bytes` and syncs them to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), WeightsError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Checks the declared and actual shape against this build's layout.
fn check_layout(file: &WeightsFile) -> Result<(), WeightsError> {
    if file.n_features != N_FEATURES {
        return Err(shape("feature count", file.n_features, N_FEATURES));
    }
    if file.n_strategies != Strategy::COUNT {
        return Err(shape("strategy count", file.n_strategies, Strategy::COUNT));
    }
    if file.strategies != Strategy::ALL {
        return Err(shape(
            "strategy order",
            format!("{:?}", file.strategies),
            format!("{:?}", Strategy::ALL),
        ));
    }
    for (name, m) in [("weights", &file.weights), ("visits", &file.visits)] {
        if m.len() != Strategy::COUNT {
            return Err(shape(format!("{name} row count"), m.len(), Strategy::COUNT));
        }
        for (s, row) in m.iter().enumerate() {
            if row.len() != N_FEATURES {
                return Err(shape(
                    format!("{name} row {s} length"),
                    row.len(),
                    N_FEATURES,
                ));
            }
        }
    }
    let names = feature_names();
    if file.feature_names.len() != names.len() {
        return Err(shape(
            "feature name count",
            file.feature_names.len(),
            names.len(),
        ));
    }
    for (i, (found, expected)) in file.feature_names.iter().zip(&names).enumerate() {
        if found != expected {
            return Err(shape(format!("feature name {i}"), found, expected));
        }
    }
    if file.per_kind.len() != KIND_SLOTS {
        return Err(shape("per_kind entries", file.per_kind.len(), KIND_SLOTS));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neural_router::{Context, Outcome, StrategyMask};
    use crate::types::{JobKind, Strategy};

    fn trained() -> NeuralRouter {
        let mut nr = NeuralRouter::new(NeuralConfig::default(), 11);
        for i in 0..500u64 {
            let ctx = Context {
                kind: JobKind::ALL.get((i % 4) as usize).copied(),
                class_slot: None,
                compute_cost: 1_000 + i * 997,
                scaling_potential: (i % 10) as f32 / 10.0,
                latency_budget_ms: 1 + i % 50,
                pressure: (i % 7) as f64 / 7.0,
                queue_fill: (i % 5) as f64 / 5.0,
            };
            let c = nr.choose(&ctx, StrategyMask::ALL).unwrap();
            nr.record_outcome(
                &ctx,
                c.strategy,
                Outcome::Completed {
                    latency_ns: i * 20_000,
                },
            );
        }
        nr
    }

    /// serde_json's default float parser may be off by one ulp on read-back.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(1.0)
    }

    fn assert_same(a: &NeuralRouter, b: &NeuralRouter) {
        let (x, y) = (a.snapshot(), b.snapshot());
        assert_eq!(x.sample_count, y.sample_count);
        assert_eq!(x.warmed_up, y.warmed_up);
        assert_eq!(x.feature_names, y.feature_names);
        assert_eq!(x.strategies, y.strategies);
        for (r, s) in a.visits.iter().zip(&b.visits) {
            assert!(r.iter().zip(s).all(|(p, q)| close(*p, *q)));
        }
        assert!(close(x.avg_reward, y.avg_reward) && close(x.epsilon, y.epsilon));
        for (r, s) in x.weights.iter().zip(&y.weights) {
            assert!(
                r.iter().zip(s).all(|(p, q)| close(*p, *q)),
                "{r:?} != {s:?}"
            );
        }
        for (k, l) in x.per_kind.iter().zip(&y.per_kind) {
            assert_eq!(
                (&k.kind, k.samples, k.preferred),
                (&l.kind, l.samples, l.preferred)
            );
            assert_eq!(k.per_strategy_samples, l.per_strategy_samples);
            assert!(close(k.avg_reward, l.avg_reward));
            let avgs = k
                .per_strategy_avg_reward
                .iter()
                .zip(&l.per_strategy_avg_reward);
            assert!(avgs.into_iter().all(|(p, q)| close(*p, *q)));
        }
    }

    fn edit(json: &str, f: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
        f(&mut v);
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("helix_weights.json");
        let nr = trained();
        nr.save(&path).unwrap();
        let back = NeuralRouter::load(&path, NeuralConfig::default()).unwrap();
        assert_same(&back, &nr);
        let ctx = Context {
            kind: None,
            class_slot: None,
            compute_cost: 70_000,
            scaling_potential: 0.2,
            latency_budget_ms: 4,
            pressure: 0.5,
            queue_fill: 0.5,
        };
        let (p, q) = (back.predict(&ctx), nr.predict(&ctx));
        assert!(p.iter().zip(&q).all(|(a, b)| close(*a, *b)));
        // Overwrite in place; no temporary file is left behind.
        back.save(&path).unwrap();
        let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(&format!("\"format_version\": {WEIGHTS_FORMAT_VERSION}")));
        assert!(text.contains(&format!("\"n_features\": {N_FEATURES}")));
        assert!(text.contains(&format!("\"n_strategies\": {}", Strategy::COUNT)));
    }

    #[test]
    fn unwritable_directory_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where a directory should be: not writable even as root.
        let blocker = dir.path().join("not_a_dir");
        fs::write(&blocker, b"x").unwrap();
        let path = blocker.join("w.json");
        let err = trained().save(&path).unwrap_err();
        match &err {
            WeightsError::Io { path: p, .. } => assert!(p.starts_with(&blocker), "{p:?}"),
            other => panic!("expected Io, got {other:?}"),
        }
        assert!(err.to_string().contains("not_a_dir"));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let ro = dir.path().join("read_only");
            fs::create_dir(&ro).unwrap();
            fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
            // Root ignores directory permissions; only assert when they apply.
            let probe = fs::write(ro.join("probe"), b"x").is_err();
            if probe {
                let err = trained().save(&ro.join("w.json")).unwrap_err();
                assert!(matches!(err, WeightsError::Io { .. }), "{err:?}");
                assert_eq!(fs::read_dir(&ro).unwrap().count(), 0);
            }
        }
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = NeuralRouter::load(&dir.path().join("nope.json"), NeuralConfig::default());
        assert!(matches!(err, Err(WeightsError::Io { .. })));
    }

    #[test]
    fn truncated_or_corrupt_json_is_a_parse_error() {
        let json = trained().to_json().unwrap();
        let truncated = &json[..json.len() / 2];
        let cfg = NeuralConfig::default();
        assert!(matches!(
            NeuralRouter::from_json(truncated, cfg),
            Err(WeightsError::Parse(_))
        ));
        assert!(matches!(
            NeuralRouter::from_json("", cfg),
            Err(WeightsError::Parse(_))
        ));
        assert!(matches!(
            NeuralRouter::from_json("{\"format_version\": 2}", cfg),
            Err(WeightsError::Parse(_))
        ));
        let wrong_type = edit(&json, |v| v["weights"][0][0] = "x".into());
        assert!(matches!(
            NeuralRouter::from_json(&wrong_type, cfg),
            Err(WeightsError::Parse(_))
        ));
        // Out-of-range numbers are rejected by the parser itself.
        let huge = json.replacen("\"sample_count\": 500", "\"sample_count\": 1e999", 1);
        assert!(matches!(
            NeuralRouter::from_json(&huge, cfg),
            Err(WeightsError::Parse(_))
        ));
    }

    #[test]
    fn other_version_is_a_version_error() {
        let json = trained().to_json().unwrap();
        let v3 = edit(&json, |v| {
            v["format_version"] = 3.into();
            v["weights"] = serde_json::Value::Null;
        });
        let err = NeuralRouter::from_json(&v3, NeuralConfig::default()).unwrap_err();
        assert!(
            matches!(
                err,
                WeightsError::Version {
                    found: 3,
                    expected: 2
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "weights format_version is 3, expected 2");
        // A file of the previous layout (4 kind slots, before work classes) is a
        // version error too, which the binary reports and answers with a warm start.
        let v1 = edit(&json, |v| v["format_version"] = 1.into());
        assert!(matches!(
            NeuralRouter::from_json(&v1, NeuralConfig::default()),
            Err(WeightsError::Version {
                found: 1,
                expected: 2
            })
        ));
    }

    #[test]
    fn shape_mismatches_are_shape_errors() {
        let json = trained().to_json().unwrap();
        let cfg = NeuralConfig::default();
        let cases: Vec<(&str, String)> = vec![
            ("feature count", edit(&json, |v| v["n_features"] = 3.into())),
            (
                "strategy count",
                edit(&json, |v| v["n_strategies"] = 4.into()),
            ),
            (
                "weights row count",
                edit(&json, |v| {
                    v["weights"].as_array_mut().unwrap().pop();
                }),
            ),
            (
                "weights row 1 length",
                edit(&json, |v| {
                    v["weights"][1].as_array_mut().unwrap().pop();
                }),
            ),
            (
                "visits row 3 length",
                edit(&json, |v| {
                    v["visits"][3].as_array_mut().unwrap().push(1.into());
                }),
            ),
            (
                "feature name 0",
                edit(&json, |v| v["feature_names"][0] = "other".into()),
            ),
            (
                "strategy order",
                edit(&json, |v| {
                    v["strategies"].as_array_mut().unwrap().swap(0, 1)
                }),
            ),
            (
                "per_kind entries",
                edit(&json, |v| {
                    v["per_kind"].as_array_mut().unwrap().pop();
                }),
            ),
        ];
        for (what, text) in cases {
            match NeuralRouter::from_json(&text, cfg) {
                Err(WeightsError::Shape { what: w, .. }) => assert_eq!(w, what),
                other => panic!("{what}: expected Shape, got {other:?}"),
            }
        }
    }

    #[test]
    fn null_or_non_finite_numbers_are_non_finite_errors() {
        let json = trained().to_json().unwrap();
        let cfg = NeuralConfig::default();
        let null_weight = edit(&json, |v| v["weights"][2][17] = serde_json::Value::Null);
        match NeuralRouter::from_json(&null_weight, cfg) {
            Err(WeightsError::NonFinite { what, value }) => {
                assert_eq!(what, "weights[2][17]");
                assert_eq!(value, "null");
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        let null_eps = edit(&json, |v| v["epsilon"] = serde_json::Value::Null);
        assert!(matches!(
            NeuralRouter::from_json(&null_eps, cfg),
            Err(WeightsError::NonFinite { .. })
        ));
        let mut bad = trained();
        bad.weights[0][0] = f64::NAN;
        assert!(matches!(bad.to_json(), Err(WeightsError::NonFinite { .. })));
        let dir = tempfile::tempdir().unwrap();
        assert!(bad.save(&dir.path().join("w.json")).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn json_round_trips_and_refuses_another_version() -> Result<(), Box<dyn std::error::Error>> {
        use crate::neural_router::{NeuralConfig, NeuralRouter, WeightsError};
        let nr = NeuralRouter::new(NeuralConfig::default(), 1);
        let json = nr.to_json()?;
        let back = NeuralRouter::from_json(&json, NeuralConfig::default())?;
        assert_eq!(back.samples(), nr.samples());
        let old = json.replace("\"format_version\": 2", "\"format_version\": 1");
        assert!(matches!(
            NeuralRouter::from_json(&old, NeuralConfig::default()),
            Err(WeightsError::Version {
                found: 1,
                expected: 2
            })
        ));
        Ok(())
    }
}
