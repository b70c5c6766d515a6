//! The flags of one source, compiled for evaluation.
//!
//! Each flag's variants are typed once and its targeting is compiled once (datalogic's
//! JsonLogic with flagd's operators: `fractional`, `sem_ver`, `starts_with`, `ends_with`).
//! An evaluation builds its context on the stack and evaluates in a per-thread arena it
//! reuses, so it allocates nothing. The meaning is flagd's in-process evaluation:
//!
//! - a disabled flag, a missing variant or targeting that fails answers nothing (the
//!   caller's default);
//! - targeting that answers `null` picks the default variant, a string picks that variant,
//!   and any other value picks the variant named by its JSON text (`true` → "true");
//! - targeting sees `targetingKey`, the caller's fields, and `$flagd.flagKey` and
//!   `$flagd.timestamp` (seconds since the epoch).

use std::{cell::RefCell, collections::HashMap, sync::LazyLock, time::SystemTime};

use datalogic_rs::{DataValue, Engine, Logic, bumpalo::Bump};
use open_feature_flagd::resolver::in_process::FeatureFlag;

/// A variant's value, as the typed readers want it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Answer {
    Bool(bool),
    Float(f64),
    Int(i64),
}

/// What targeting is evaluated against: the subject and where the service runs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Context<'a> {
    pub targeting_key: Option<&'a str>,
    pub role: Option<&'a str>,
    pub environment: &'a str,
}

/// One flag, ready to evaluate.
#[derive(Debug)]
pub(super) struct CompiledFlag {
    enabled: bool,
    default_variant: String,
    /// Each variant's value; `None` for a value no reader takes (a string, a list, an object).
    variants: HashMap<String, Option<Answer>>,
    targeting: Targeting,
}

#[derive(Debug)]
enum Targeting {
    /// No targeting: the default variant for everyone.
    None,
    Rules(Logic),
    /// Targeting that does not compile: every evaluation fails, as in flagd.
    Broken,
}

/// One engine for compiling and evaluating every flag.
static ENGINE: LazyLock<Engine> = LazyLock::new(Engine::new);

thread_local! {
    /// The arena evaluations allocate in, emptied after each.
    static ARENA: RefCell<Bump> = RefCell::new(Bump::with_capacity(4096));
}

impl CompiledFlag {
    /// Compiles `flag` (named `key`, for the warning when its targeting does not compile).
    pub(super) fn compile(key: &str, flag: &FeatureFlag) -> CompiledFlag {
        let targeting = match &flag.targeting {
            None => Targeting::None,
            Some(rules) if rules.as_object().is_some_and(serde_json::Map::is_empty) => {
                Targeting::None
            }
            Some(rules) => match ENGINE.compile(rules.to_string().as_str()) {
                Ok(logic) => Targeting::Rules(logic),
                Err(error) => {
                    tracing::warn!(flag = key, %error, "flag targeting does not compile: the flag answers its default");
                    Targeting::Broken
                }
            },
        };
        CompiledFlag {
            enabled: flag.state != "DISABLED",
            default_variant: flag.default_variant.clone(),
            variants: flag
                .variants
                .iter()
                .map(|(name, value)| (name.clone(), typed(value)))
                .collect(),
            targeting,
        }
    }

    /// The flag's value for `context`, or `None` where flagd would answer an error.
    pub(super) fn evaluate(&self, key: &str, context: Context<'_>) -> Option<Answer> {
        if !self.enabled {
            return None;
        }
        match &self.targeting {
            Targeting::None => self.value_of(&self.default_variant),
            Targeting::Broken => None,
            Targeting::Rules(logic) => ARENA.with(|arena| {
                let mut arena = arena.borrow_mut();
                arena.reset();
                self.evaluate_rules(logic, key, context, &arena)
            }),
        }
    }

    fn evaluate_rules(
        &self,
        logic: &Logic,
        key: &str,
        context: Context<'_>,
        arena: &Bump,
    ) -> Option<Answer> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let flagd = [
            ("flagKey", DataValue::String(key)),
            (
                "timestamp",
                DataValue::from_i64(i64::try_from(now).unwrap_or(i64::MAX)),
            ),
        ];
        let mut fields = [("", DataValue::Null); 4];
        let mut count = 0;
        for (name, value) in [
            ("targetingKey", context.targeting_key),
            ("role", context.role),
            ("environment", Some(context.environment)),
        ] {
            if let Some(value) = value {
                fields[count] = (name, DataValue::String(value));
                count += 1;
            }
        }
        fields[count] = ("$flagd", DataValue::Object(&flagd));
        let data = DataValue::Object(&fields[..=count]);
        match ENGINE.evaluate(logic, data, arena).ok()? {
            DataValue::Null => self.value_of(&self.default_variant),
            DataValue::String(variant) => self.value_of(variant),
            other => self.value_of(&other.to_string()),
        }
    }

    fn value_of(&self, variant: &str) -> Option<Answer> {
        self.variants.get(variant).copied().flatten()
    }
}

/// A variant's JSON value as a reader takes it: a whole number is an integer (and a number),
/// any other number a float.
fn typed(value: &serde_json::Value) -> Option<Answer> {
    match value {
        serde_json::Value::Bool(value) => Some(Answer::Bool(*value)),
        serde_json::Value::Number(number) => number
            .as_i64()
            .map(Answer::Int)
            .or_else(|| number.as_f64().map(Answer::Float)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use open_feature::EvaluationContext;
    use open_feature_flagd::resolver::in_process::{FlagParser, Operator};
    use uuid::Uuid;

    use super::*;

    /// Flags of every kind of targeting the services' subjects meet.
    const FLAGS: &str = r#"{"flags": {
        "by-role": {"state": "ENABLED", "variants": {"on": true, "off": false},
            "defaultVariant": "off",
            "targeting": {"if": [{"==": [{"var": "role"}, "cleaner"]}, "on", "off"]}},
        "by-user": {"state": "ENABLED", "variants": {"on": true, "off": false},
            "defaultVariant": "off",
            "targeting": {"if": [{"starts_with": [{"var": "targetingKey"}, "a"]}, "on", null]}},
        "by-environment": {"state": "ENABLED", "variants": {"low": 0.5, "high": 4},
            "defaultVariant": "low",
            "targeting": {"if": [{"in": [{"var": "environment"}, ["staging", "e2e"]]}, "high"]}},
        "rollout": {"state": "ENABLED", "variants": {"on": true, "off": false},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 30], ["off", 70]]}},
        "rollout-by-role": {"state": "ENABLED", "variants": {"a": 1, "b": 2, "c": 3},
            "defaultVariant": "a",
            "targeting": {"fractional": [{"cat": [{"var": "role"}, {"var": "targetingKey"}]},
                ["a", 1], ["b", 1], ["c", 2]]}},
        "by-flag-key": {"state": "ENABLED", "variants": {"true": true, "false": false},
            "defaultVariant": "false",
            "targeting": {"==": [{"var": "$flagd.flagKey"}, "by-flag-key"]}},
        "by-version": {"state": "ENABLED", "variants": {"true": 1, "false": 0},
            "defaultVariant": "false",
            "targeting": {"sem_ver": ["1.4.0", ">=", "1.2"]}},
        "missing-variant": {"state": "ENABLED", "variants": {"on": true},
            "defaultVariant": "on", "targeting": {"if": [{"var": "role"}, "nowhere", "on"]}},
        "disabled": {"state": "DISABLED", "variants": {"on": true}, "defaultVariant": "on"},
        "static": {"state": "ENABLED", "variants": {"on": true}, "defaultVariant": "on"}
    }}"#;

    /// flagd's own evaluation of `flag`, as its in-process resolver does it. (Its engine is
    /// datalogic's too: with datalogic's `flagd` feature on, datalogic's built-in
    /// `fractional`, `sem_ver`, `starts_with` and `ends_with` take precedence over the
    /// ones it registers, so `fractional` is pinned to flagd's published spec separately.)
    fn flagd_answer(key: &str, flag: &FeatureFlag, context: Context<'_>) -> Option<Answer> {
        if flag.state == "DISABLED" {
            return None;
        }
        let variant = match &flag.targeting {
            None => flag.default_variant.clone(),
            Some(rules) => {
                let mut evaluation = EvaluationContext::default()
                    .with_custom_field("environment", context.environment);
                if let Some(user) = context.targeting_key {
                    evaluation = evaluation.with_targeting_key(user);
                }
                if let Some(role) = context.role {
                    evaluation = evaluation.with_custom_field("role", role);
                }
                Operator::new()
                    .apply(key, &rules.to_string(), &evaluation)
                    .ok()?
                    .unwrap_or_else(|| flag.default_variant.clone())
            }
        };
        typed(flag.variants.get(&variant)?)
    }

    #[test]
    fn every_answer_is_flagds_own() {
        let parsed = FlagParser::parse_string(FLAGS).unwrap();
        let users: Vec<String> = (0..400).map(|_| Uuid::new_v4().to_string()).collect();
        let mut compared = 0;
        let mut rollout_on = 0;
        for (key, flag) in &parsed.flags {
            let compiled = CompiledFlag::compile(key, flag);
            for user in users.iter().map(|user| Some(user.as_str())).chain([None]) {
                for role in [Some("customer"), Some("cleaner"), None] {
                    for environment in ["local", "staging"] {
                        let context = Context {
                            targeting_key: user,
                            role,
                            environment,
                        };
                        let ours = compiled.evaluate(key, context);
                        assert_eq!(
                            ours,
                            flagd_answer(key, flag, context),
                            "{key} for {context:?}"
                        );
                        compared += 1;
                        rollout_on +=
                            usize::from(key == "rollout" && ours == Some(Answer::Bool(true)));
                    }
                }
            }
        }
        assert_eq!(compared, 10 * 401 * 3 * 2);
        // 30 % of 400 users (times 3 roles and 2 environments: the key is the user's alone).
        assert!((90 * 6..=150 * 6).contains(&rollout_on), "{rollout_on}");
    }

    #[test]
    fn a_rollout_buckets_users_by_the_hash_flagds_spec_names() {
        // The spec: murmur3 (x86, 32 bits, seed 0) of flagKey followed by targetingKey, and
        // the bucket (hash × total weight) >> 32 against the weights in order.
        let parsed = FlagParser::parse_string(FLAGS).unwrap();
        let compiled = CompiledFlag::compile("rollout", &parsed.flags["rollout"]);
        for _ in 0..1000 {
            let user = Uuid::new_v4().to_string();
            let hash = murmurhash3::murmurhash3_x86_32(format!("rollout{user}").as_bytes(), 0);
            let bucket = (u64::from(hash) * 100) >> 32;
            let context = Context {
                targeting_key: Some(&user),
                role: None,
                environment: "local",
            };
            assert_eq!(
                compiled.evaluate("rollout", context),
                Some(Answer::Bool(bucket < 30)),
                "{user}"
            );
        }
    }

    #[test]
    fn targeting_that_does_not_compile_answers_nothing() {
        let parsed = FlagParser::parse_string(
            r#"{"flags": {"odd": {"state": "ENABLED", "variants": {"on": true},
                "defaultVariant": "on", "targeting": {"no_such_operator": [1]}}}}"#,
        )
        .unwrap();
        let compiled = CompiledFlag::compile("odd", &parsed.flags["odd"]);
        let context = Context {
            targeting_key: Some("someone"),
            role: None,
            environment: "local",
        };
        assert_eq!(compiled.evaluate("odd", context), None);
    }
}
