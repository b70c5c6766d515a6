//! The cleaning-duration model: gradient-boosted trees (forust-ml, histogram boosting)
//! trained on completed bookings, predicting minutes from the home (size, bedrooms,
//! bathrooms, pets), the service and the cleaner's historic speed.
//!
//! Durations scale with a cleaner's pace, so the model learns the logarithm of minutes.
//! Training runs twice: a first model without speed gives each job an expected duration;
//! a cleaner's speed is the mean log of their jobs' paces (actual over expected, clipped),
//! shrunk toward the population's 1 by how few jobs they have; the second model adds it,
//! each training row seeing its cleaner's speed from their other rows only. A fifth of the
//! rows (every fifth) are held out, and the mean absolute error on them, in minutes, and
//! what quotes a new cleaner would get on a fixed panel of homes ([`panel_shift`]) decide
//! whether a model may replace another.

use std::collections::HashMap;

use forust_ml::{GradientBooster, Matrix, objective::ObjectiveType};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use spruce_domain::{pricing::billable_minutes, reason::FieldError};

use super::cleaner::{SERVICES, Services};

/// Columns: one per service, size, bedrooms, bathrooms, pets, the cleaner's speed.
const FEATURES: usize = SERVICES.len() + 5;
/// The names of the columns, recorded with each model version.
pub const FEATURE_NAMES: [&str; FEATURES] = [
    "service_standard",
    "service_deep",
    "service_move_out",
    "service_office",
    "size_m2",
    "bedrooms",
    "bathrooms",
    "has_pets",
    "cleaner_speed",
];

/// A cleaning to predict: the home, the service, and who cleans (if known).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    pub service: Services,
    pub size_m2: f64,
    pub bedrooms: f64,
    pub bathrooms: f64,
    pub has_pets: bool,
    pub cleaner_id: Option<Uuid>,
}

impl Job {
    /// Checks what a quote is asked for: one service, a home of 1 to 10,000 m² with at most
    /// 50 bedrooms and 50 bathrooms; `errors` already found (a cleaner id that is no UUID,
    /// say) are reported with these.
    ///
    /// # Errors
    /// One field error per value out of range.
    pub fn check(
        service: &str,
        home: spruce_domain::pricing::Home,
        cleaner_id: Option<Uuid>,
        mut errors: Vec<FieldError>,
    ) -> Result<Job, Vec<FieldError>> {
        let service = Services::parse([service]);
        if service.is_none() {
            errors.push(FieldError::new(
                "service",
                "must be standard, deep, move_out or office",
            ));
        }
        if home.size_m2 == 0 || home.size_m2 > 10_000 {
            errors.push(FieldError::new("size_m2", "must be from 1 to 10000"));
        }
        if home.bedrooms > 50 {
            errors.push(FieldError::new("bedrooms", "must be at most 50"));
        }
        if home.bathrooms > 50 {
            errors.push(FieldError::new("bathrooms", "must be at most 50"));
        }
        match service {
            Some(service) if errors.is_empty() => Ok(Job {
                service,
                size_m2: f64::from(home.size_m2),
                bedrooms: f64::from(home.bedrooms),
                bathrooms: f64::from(home.bathrooms),
                has_pets: home.has_pets,
                cleaner_id,
            }),
            _ => Err(errors),
        }
    }
}

/// A completed booking: the job and how long it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Completed {
    pub job: Job,
    pub actual_min: f64,
}

/// Why a model could not be trained.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("too few completed bookings to learn from ({0}; at least 50)")]
    TooFewRows(usize),
    #[error("the booster failed: {0}")]
    Booster(String),
}

/// A trained model and how well it did on the rows it never saw.
#[derive(Serialize, Deserialize)]
pub struct DurationModel {
    booster: GradientBooster,
    /// Cleaners' speeds (actual over expected), from the training rows.
    speeds: HashMap<Uuid, f64>,
    /// Mean absolute error on the hold-out rows, in minutes.
    pub holdout_mae_min: f64,
    /// Rows trained on, and held out.
    pub rows: usize,
    pub holdout_rows: usize,
}

impl std::fmt::Debug for DurationModel {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "DurationModel({} rows, hold-out MAE {:.1} min)",
            self.rows, self.holdout_mae_min
        )
    }
}

fn booster(threads: Option<usize>) -> GradientBooster {
    GradientBooster::default()
        .set_num_threads(threads)
        .set_objective_type(ObjectiveType::SquaredLoss)
        .set_iterations(150)
        .set_learning_rate(0.15)
        .set_max_depth(5)
        .set_min_leaf_weight(5.0)
        .set_seed(7)
        .set_parallel(true)
}

/// Column-major features of `jobs`, the speed column from `speeds` (one per job).
fn features(jobs: &[Job], speeds: &[f64]) -> Vec<f64> {
    let mut columns = vec![0.0; jobs.len() * FEATURES];
    let rows = jobs.len();
    for (row, job) in jobs.iter().enumerate() {
        for (index, name) in SERVICES.iter().enumerate() {
            let offered = Services::parse([*name]).is_some_and(|one| job.service.contains(one));
            columns[index * rows + row] = f64::from(u8::from(offered));
        }
        let base = SERVICES.len();
        columns[base * rows + row] = job.size_m2;
        columns[(base + 1) * rows + row] = job.bedrooms;
        columns[(base + 2) * rows + row] = job.bathrooms;
        columns[(base + 3) * rows + row] = f64::from(u8::from(job.has_pets));
        columns[(base + 4) * rows + row] = speeds[row];
    }
    columns
}

fn fit(
    jobs: &[Job],
    log_minutes: &[f64],
    speeds: &[f64],
    threads: Option<usize>,
) -> Result<GradientBooster, TrainingError> {
    let data = features(jobs, speeds);
    let matrix = Matrix::new(&data, jobs.len(), FEATURES);
    let mut model = booster(threads);
    model
        .fit_unweighted(&matrix, log_minutes, None)
        .map_err(|error| TrainingError::Booster(error.to_string()))?;
    Ok(model)
}

/// Whether the row at `index` of a history is held out of training: every fifth.
fn held_out(index: usize) -> bool {
    index % 5 == 4
}

/// A row of the history and its position (see [`held_out`]).
type Numbered<'a> = (usize, &'a Completed);

/// How many of a cleaner's own jobs weigh as much as the population's pace in their speed:
/// a cleaner with one job is mostly the population, one with fifty mostly themselves.
const SPEED_PRIOR_JOBS: f64 = 5.0;
/// A job counts at most this many times faster or slower than expected, in speeds and in
/// the targets, so that one wild row moves neither a cleaner nor the model much.
const MAX_PACE_FACTOR: f64 = 2.0;

/// A cleaner's speed from the sum of the logs of their jobs' paces and the number of jobs,
/// shrunk toward the population's 1 (empirical Bayes with [`SPEED_PRIOR_JOBS`]).
fn shrunk_speed(log_pace_sum: f64, jobs: f64) -> f64 {
    (log_pace_sum / (jobs + SPEED_PRIOR_JOBS)).exp()
}

impl DurationModel {
    /// Trains on `history`, holding out every fifth row, on `threads` threads (`None`: one
    /// per core).
    ///
    /// A first model without speeds says what each job takes; a job's pace is its actual
    /// over that, clipped to [`MAX_PACE_FACTOR`] either way (and so are the targets). A
    /// training row's speed comes from its cleaner's other rows only (out of fold), shrunk
    /// toward 1, so rows of cleaners with little history teach the model what a new
    /// cleaner (speed 1) takes.
    ///
    /// # Errors
    /// Too few rows, or the booster refusing them.
    pub fn train(history: &[Completed], threads: Option<usize>) -> Result<Self, TrainingError> {
        if history.len() < 50 {
            return Err(TrainingError::TooFewRows(history.len()));
        }
        let (train, holdout): (Vec<Numbered<'_>>, Vec<Numbered<'_>>) = history
            .iter()
            .enumerate()
            .partition(|(index, _)| !held_out(*index));
        let jobs: Vec<Job> = train.iter().map(|(_, row)| row.job).collect();
        let targets: Vec<f64> = train
            .iter()
            .map(|(_, row)| row.actual_min.max(1.0).ln())
            .collect();

        // First pass: what a job takes without knowing who cleans it.
        let population = vec![1.0; jobs.len()];
        let plain = fit(&jobs, &targets, &population, threads)?;
        let expected = plain.predict(
            &Matrix::new(&features(&jobs, &population), jobs.len(), FEATURES),
            true,
        );
        let limit = MAX_PACE_FACTOR.ln();
        let paces: Vec<f64> = targets
            .iter()
            .zip(&expected)
            .map(|(target, expected)| (target - expected).clamp(-limit, limit))
            .collect();
        let mut totals: HashMap<Uuid, (f64, f64)> = HashMap::new();
        for (job, pace) in jobs.iter().zip(&paces) {
            if let Some(cleaner) = job.cleaner_id {
                let total = totals.entry(cleaner).or_insert((0.0, 0.0));
                total.0 += pace;
                total.1 += 1.0;
            }
        }
        // Out of fold: each row's speed leaves the row itself out.
        let row_speeds: Vec<f64> = jobs
            .iter()
            .zip(&paces)
            .map(|(job, pace)| {
                job.cleaner_id
                    .and_then(|cleaner| totals.get(&cleaner))
                    .map_or(1.0, |(sum, count)| shrunk_speed(sum - pace, count - 1.0))
            })
            .collect();
        let robust_targets: Vec<f64> = expected
            .iter()
            .zip(&paces)
            .map(|(expected, pace)| expected + pace)
            .collect();
        let booster = fit(&jobs, &robust_targets, &row_speeds, threads)?;
        let speeds: HashMap<Uuid, f64> = totals
            .into_iter()
            .map(|(cleaner, (sum, count))| (cleaner, shrunk_speed(sum, count)))
            .collect();
        let mut model = DurationModel {
            booster,
            speeds,
            holdout_mae_min: f64::NAN,
            rows: train.len(),
            holdout_rows: holdout.len(),
        };
        model.holdout_mae_min = model.holdout_mae(history);
        Ok(model)
    }

    /// Returns the mean absolute error in minutes on the rows of `history` that
    /// [`DurationModel::train`] holds out (every fifth), so that two models can be compared
    /// on the same rows.
    pub fn holdout_mae(&self, history: &[Completed]) -> f64 {
        let held: Vec<&Completed> = history
            .iter()
            .enumerate()
            .filter(|(index, _)| held_out(*index))
            .map(|(_, row)| row)
            .collect();
        let jobs: Vec<Job> = held.iter().map(|row| row.job).collect();
        held.iter()
            .zip(self.predict_many(&jobs))
            .map(|(row, predicted)| (row.actual_min - predicted).abs())
            .sum::<f64>()
            / held.len().max(1) as f64
    }

    /// Returns the speed the model knows for a job's cleaner: theirs, or the population's 1
    /// for a cleaner without history and a job without a cleaner.
    fn speed(&self, job: &Job) -> f64 {
        job.cleaner_id
            .and_then(|cleaner| self.speeds.get(&cleaner).copied())
            .unwrap_or(1.0)
    }

    /// Predicts the minutes of each job.
    pub fn predict_many(&self, jobs: &[Job]) -> Vec<f64> {
        let speeds: Vec<f64> = jobs.iter().map(|job| self.speed(job)).collect();
        let data = features(jobs, &speeds);
        self.booster
            .predict(&Matrix::new(&data, jobs.len(), FEATURES), false)
            .into_iter()
            .map(f64::exp)
            .collect()
    }

    /// Predicts the minutes of one job: the trees walked on one row, without the batch
    /// path's allocation per tree.
    pub fn predict(&self, job: &Job) -> f64 {
        let row = features(std::slice::from_ref(job), &[self.speed(job)]);
        let booster = &self.booster;
        let trees = &booster.trees[..booster.prediction_iteration.unwrap_or(booster.trees.len())];
        let log_minutes = booster.base_score
            + trees
                .iter()
                .map(|tree| tree.predict_row_from_row_slice(&row, &booster.missing))
                .sum::<f64>();
        log_minutes.exp()
    }

    /// Serialises the model (trees and speeds) to JSON, to store a version.
    ///
    /// # Errors
    /// Only if serialisation fails.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }

    /// Reads a model stored by [`DurationModel::to_json`].
    ///
    /// # Errors
    /// When the JSON is not a model.
    pub fn from_json(json: &str) -> serde_json::Result<Self> {
        serde_json::from_str(json)
    }
}

/// A candidate may move the quotes of the panel's homes, for a new cleaner or none, at most
/// this much on average from what serves now (the model, or the rule of thumb before any).
pub const MAX_PANEL_SHIFT: f64 = 0.25;

/// The fixed panel of homes (every service, small to large, with and without pets) whose
/// quotes without a cleaner a candidate must keep near what serves now.
pub fn panel() -> Vec<Job> {
    let mut jobs = Vec::new();
    for name in SERVICES {
        let service = Services::parse([name]).expect("a known service");
        for (size_m2, bedrooms, bathrooms) in [
            (30.0, 1.0, 1.0),
            (55.0, 1.0, 1.0),
            (75.0, 2.0, 1.0),
            (110.0, 3.0, 2.0),
            (160.0, 4.0, 3.0),
        ] {
            for has_pets in [false, true] {
                jobs.push(Job {
                    service,
                    size_m2,
                    bedrooms,
                    bathrooms,
                    has_pets,
                    cleaner_id: None,
                });
            }
        }
    }
    jobs
}

/// The rule-of-thumb minutes of `job` (platform's, which core books with): what quotes
/// before any model.
pub fn rule_of_thumb(job: &Job) -> u32 {
    let service = SERVICES
        .iter()
        .find(|name| Services::parse([**name]).is_some_and(|one| job.service.contains(one)))
        .copied()
        .unwrap_or("standard");
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let count = |value: f64| value.max(0.0) as u32;
    spruce_domain::pricing::rule_of_thumb_minutes(
        service,
        spruce_domain::pricing::Home {
            size_m2: count(job.size_m2),
            bedrooms: count(job.bedrooms),
            bathrooms: count(job.bathrooms),
            has_pets: job.has_pets,
        },
    )
}

/// The relative move of each `candidate` quote from its `reference` quote (minutes, one
/// per panel job), both billed in quarter hours.
pub fn panel_shifts(candidate: &[f64], reference: &[f64]) -> Vec<f64> {
    candidate
        .iter()
        .zip(reference)
        .map(|(candidate, reference)| {
            let (candidate, reference) = (
                f64::from(billable_minutes(*candidate)),
                f64::from(billable_minutes(*reference)),
            );
            (candidate - reference).abs() / reference
        })
        .collect()
}

/// The mean relative move of `candidate` quotes from `reference` quotes over the panel
/// (see [`panel_shifts`]): what [`MAX_PANEL_SHIFT`] bounds. A learned model may rightly
/// differ from the rule of thumb on a home or two; a broken one moves them all.
pub fn panel_shift(candidate: &[f64], reference: &[f64]) -> f64 {
    let shifts = panel_shifts(candidate, reference);
    shifts.iter().sum::<f64>() / shifts.len().max(1) as f64
}

/// Whether a candidate whose hold-out error is `candidate_mae` may replace the serving
/// model, whose error on the same rows is `current_mae` (`None`: nothing serves): only if it
/// does no worse.
pub fn should_promote(candidate_mae: f64, current_mae: Option<f64>) -> bool {
    candidate_mae.is_finite() && current_mae.is_none_or(|current| candidate_mae <= current)
}

/// The mean absolute error of predicting each service's mean duration (the yardstick a
/// model must beat by far), on the same hold-out split as [`DurationModel::train`].
pub fn mean_per_service_mae(history: &[Completed]) -> f64 {
    let mut sums: HashMap<u8, (f64, f64)> = HashMap::new();
    let key = |job: &Job| {
        SERVICES
            .iter()
            .position(|name| Services::parse([*name]).is_some_and(|one| job.service.contains(one)))
            .map_or(u8::MAX, |index| index as u8)
    };
    for (_, row) in history
        .iter()
        .enumerate()
        .filter(|(index, _)| !held_out(*index))
    {
        let entry = sums.entry(key(&row.job)).or_insert((0.0, 0.0));
        entry.0 += row.actual_min;
        entry.1 += 1.0;
    }
    let held: Vec<&Completed> = history
        .iter()
        .enumerate()
        .filter(|(index, _)| held_out(*index))
        .map(|(_, row)| row)
        .collect();
    held.iter()
        .map(|row| {
            let (sum, count) = sums.get(&key(&row.job)).copied().unwrap_or((0.0, 1.0));
            (row.actual_min - sum / count).abs()
        })
        .sum::<f64>()
        / held.len().max(1) as f64
}

/// Synthetic completed bookings that follow the curated data set's law (core's seed):
/// for tests and benchmarks.
pub mod synthetic {
    use super::{Completed, Job};
    use crate::domain::cleaner::{SERVICES, Services};
    use uuid::Uuid;

    /// A small deterministic generator (xorshift).
    struct Random(u64);

    impl Random {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform().max(1e-12), self.uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    /// `rows` completed bookings by `cleaners` cleaners of hidden speeds 0.8–1.25.
    pub fn history(rows: usize, cleaners: usize, seed: u64) -> Vec<Completed> {
        let mut random = Random(seed.max(1));
        let speeds: Vec<f64> = (0..cleaners)
            .map(|_| 0.8 + 0.45 * random.uniform())
            .collect();
        (0..rows)
            .map(|_| {
                let cleaner = (random.uniform() * cleaners as f64) as usize % cleaners;
                let service = (random.uniform() * 4.0) as usize % 4;
                let size = 30.0 + (random.uniform() * 150.0).round();
                let bedrooms = (1.0 + (size / 35.0).floor()).min(6.0);
                let bathrooms = 1.0 + (random.uniform() * 2.0).floor();
                let has_pets = random.uniform() < 0.3;
                let (base, per_m2) =
                    [(40.0, 0.75), (75.0, 1.3), (100.0, 1.5), (35.0, 0.55)][service];
                let minutes = (base
                    + per_m2 * size
                    + 22.0 * bathrooms
                    + 9.0 * bedrooms
                    + if has_pets { 18.0 } else { 0.0 })
                    * speeds[cleaner]
                    * (0.08 * random.normal()).exp();
                Completed {
                    job: Job {
                        service: Services::parse([SERVICES[service]]).unwrap_or_default(),
                        size_m2: size,
                        bedrooms,
                        bathrooms,
                        has_pets,
                        cleaner_id: Some(Uuid::from_u128(cleaner as u128 + 1)),
                    },
                    actual_min: minutes.round().max(20.0),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_learns_the_law_far_better_than_the_mean_per_service() {
        // The curated set's size: 2,400 completed bookings by 30 cleaners.
        let history = synthetic::history(2_400, 30, 11);
        let model = DurationModel::train(&history, None).unwrap();
        let yardstick = mean_per_service_mae(&history);
        eprintln!(
            "hold-out MAE {:.2} min; mean per service {yardstick:.2} min",
            model.holdout_mae_min
        );
        assert!(
            model.holdout_mae_min <= 17.0,
            "hold-out MAE {:.1} min",
            model.holdout_mae_min
        );
        assert!(
            yardstick > 2.0 * model.holdout_mae_min,
            "{yardstick:.1} against {:.1}",
            model.holdout_mae_min
        );
        assert_eq!((model.rows, model.holdout_rows), (1_920, 480));
    }

    #[test]
    fn a_first_model_keeps_panel_quotes_near_the_rule_of_thumb() {
        let model = DurationModel::train(&synthetic::history(2_400, 30, 11), None).unwrap();
        let panel = panel();
        let rule: Vec<f64> = panel
            .iter()
            .map(|job| f64::from(rule_of_thumb(job)))
            .collect();
        let shift = panel_shift(&model.predict_many(&panel), &rule);
        assert!(shift <= MAX_PANEL_SHIFT, "{shift}");
        // A model that quotes twice the rule of thumb is refused.
        let doubled: Vec<f64> = rule.iter().map(|minutes| minutes * 2.0).collect();
        assert!(panel_shift(&doubled, &rule) > MAX_PANEL_SHIFT);
    }

    #[test]
    fn thirty_one_job_cleaners_and_a_day_long_row_barely_move_quotes_without_a_cleaner() {
        let curated = synthetic::history(2_400, 30, 11);
        let before = DurationModel::train(&curated, None).unwrap();
        // Thirty new cleaners with one completion each, one of them at 1,440 minutes.
        let mut grown = curated.clone();
        for (index, row) in synthetic::history(30, 30, 97).into_iter().enumerate() {
            let actual_min = if index == 0 { 1_440.0 } else { row.actual_min };
            grown.push(Completed {
                job: Job {
                    cleaner_id: Some(Uuid::from_u128(10_000 + index as u128)),
                    ..row.job
                },
                actual_min,
            });
        }
        let after = DurationModel::train(&grown, None).unwrap();
        let panel = panel();
        let shifts = panel_shifts(&after.predict_many(&panel), &before.predict_many(&panel));
        let largest = shifts.iter().copied().fold(0.0, f64::max);
        assert!(largest <= 0.20, "a quote without a cleaner moved {largest}");
        let new_cleaner = Job {
            cleaner_id: Some(Uuid::from_u128(10_000)),
            ..panel[4]
        };
        let quoted = after.predict(&new_cleaner);
        let without = after.predict(&panel[4]);
        assert!(quoted < without * 1.5, "{quoted} against {without}");
        let mae = after.holdout_mae(&curated);
        assert!(mae <= 17.0, "hold-out MAE on the curated history {mae}");
    }

    #[test]
    fn a_stored_model_predicts_the_same() {
        let history = synthetic::history(500, 10, 3);
        let model = DurationModel::train(&history, None).unwrap();
        let stored = DurationModel::from_json(&model.to_json().unwrap()).unwrap();
        let jobs: Vec<Job> = history.iter().take(20).map(|row| row.job).collect();
        assert_eq!(model.predict_many(&jobs), stored.predict_many(&jobs));
        let stranger = Job {
            cleaner_id: Some(Uuid::new_v4()),
            ..jobs[0]
        };
        assert!(
            model.predict(&stranger) > 20.0,
            "an unknown cleaner still gets an estimate"
        );
    }

    #[test]
    fn a_worse_candidate_is_not_promoted() {
        let history = synthetic::history(2_400, 30, 11);
        let good = DurationModel::train(&history, None).unwrap();
        // Trained on a sliver of the history, with every duration off by a random half.
        let mut noisy = synthetic::history(60, 30, 5);
        for (index, row) in noisy.iter_mut().enumerate() {
            row.actual_min *= if index % 2 == 0 { 1.5 } else { 0.5 };
        }
        let worse = DurationModel::train(&noisy, None).unwrap();
        let (good_mae, worse_mae) = (good.holdout_mae(&history), worse.holdout_mae(&history));
        assert!(worse_mae > good_mae, "{worse_mae} against {good_mae}");
        assert!(!should_promote(worse_mae, Some(good_mae)));
        assert!(should_promote(good_mae, Some(worse_mae)));
        assert!(
            should_promote(good_mae, Some(good_mae)),
            "as good is good enough"
        );
        assert!(should_promote(worse_mae, None), "anything beats nothing");
        assert!(!should_promote(f64::NAN, None));
    }

    #[test]
    fn too_little_history_is_refused() {
        assert!(matches!(
            DurationModel::train(&synthetic::history(10, 2, 1), None),
            Err(TrainingError::TooFewRows(10))
        ));
    }
}
