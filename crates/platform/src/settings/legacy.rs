//! Keys of an earlier shape, still read for one release, each with a note the service logs.
//!
//! Two kinds of change are read this way: a duration once written as a number in a unit the
//! key's name gave (`poll_ms = 500`, `window_secs = 900`, `lead_hours = 24`,
//! `refresh_token_ttl_days = 30`) becomes the key without the suffix (`poll = "500ms"`),
//! everywhere and for every service; and a service names its own moves ([`Moved`]). Each
//! layer (built-in defaults, files, environment) is upgraded on its own before they merge,
//! so an old key set in the environment still wins over a new one in a file. Where one
//! layer holds both, the new key wins.

use config::{ConfigError, Map, Source, Value, ValueKind};

/// A key a service moved: where it was, and the keys that now hold its value (one old key
/// can feed several, such as one timeout that became one per upstream). When `from` names
/// a unit (`_ms`, `_secs`, `_hours`, `_days`) and the new keys do not, its number becomes a
/// duration.
#[derive(Debug, Clone, Copy)]
pub struct Moved {
    pub from: &'static str,
    pub to: &'static [&'static str],
}

const UNITS: [(&str, &str); 4] = [
    ("_ms", "ms"),
    ("_secs", "s"),
    ("_hours", "h"),
    ("_days", "d"),
];

/// One layer's table, upgraded, as a configuration source.
#[derive(Debug, Clone)]
pub(super) struct Layer(pub Map<String, Value>);

impl Source for Layer {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, ConfigError> {
        Ok(self.0.clone())
    }
}

/// Rewrites the old keys of one layer's `table` as new ones, adding a note for each.
pub(super) fn upgrade(table: &mut Map<String, Value>, moved: &[Moved], notes: &mut Vec<String>) {
    for Moved { from, to } in moved {
        let Some(value) = remove(table, from) else {
            continue;
        };
        let value = match unit_of(from) {
            Some(unit) if to.iter().all(|key| unit_of(key).is_none()) => {
                with_unit(&value, unit).unwrap_or(value)
            }
            _ => value,
        };
        let mut written = Vec::new();
        for key in *to {
            if get(table, key).is_none() {
                insert(table, key, value.clone());
                written.push(format!("`{key}`"));
            }
        }
        notes.push(if written.is_empty() {
            format!("`{from}` is ignored: its new keys are set; remove it")
        } else {
            format!(
                "`{from}` is an old key, read for one more release: write {} instead",
                written.join(", ")
            )
        });
    }
    upgrade_units("", table, notes);
}

fn upgrade_units(prefix: &str, table: &mut Map<String, Value>, notes: &mut Vec<String>) {
    let keys: Vec<String> = table.keys().cloned().collect();
    for key in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let Some(Value {
            kind: ValueKind::Table(nested),
            ..
        }) = table.get_mut(&key)
        {
            upgrade_units(&path, nested, notes);
            continue;
        }
        let Some(unit) = unit_of(&key) else {
            continue;
        };
        let Some(converted) = with_unit(&table[&key], unit) else {
            continue;
        };
        let stem = &key[..key.len() - unit.0.len()];
        let new_path = &path[..path.len() - unit.0.len()];
        table.remove(&key);
        if table.contains_key(stem) {
            notes.push(format!(
                "`{path}` is ignored: `{new_path}` is set; remove it"
            ));
        } else {
            notes.push(format!(
                "`{path}` is an old key, read for one more release: write `{new_path} = {}` instead",
                shown(&converted)
            ));
            table.insert(stem.to_owned(), converted);
        }
    }
}

fn unit_of(key: &str) -> Option<(&'static str, &'static str)> {
    let last = key.rsplit('.').next().unwrap_or(key);
    UNITS.into_iter().find(|(suffix, _)| last.ends_with(suffix))
}

/// The duration text of a whole number (or of each of a list of them) in `unit`.
fn with_unit(value: &Value, (_, unit): (&str, &str)) -> Option<Value> {
    let text = |value: &Value| -> Option<Value> {
        let number = match &value.kind {
            ValueKind::I64(number) => u64::try_from(*number).ok()?,
            ValueKind::U64(number) => *number,
            ValueKind::String(text) => text.trim().parse().ok()?,
            _ => return None,
        };
        Some(Value::new(None, format!("{number}{unit}")))
    };
    match &value.kind {
        ValueKind::Array(items) => {
            let converted: Option<Vec<Value>> = items.iter().map(text).collect();
            Some(Value::new(None, converted?))
        }
        _ => text(value),
    }
}

fn shown(value: &Value) -> String {
    match &value.kind {
        ValueKind::Array(items) => {
            let items: Vec<String> = items.iter().map(shown).collect();
            format!("[{}]", items.join(", "))
        }
        _ => format!("\"{value}\""),
    }
}

fn get<'a>(table: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let (head, rest) = split(path);
    let value = table.get(head)?;
    match (rest, &value.kind) {
        (None, _) => Some(value),
        (Some(rest), ValueKind::Table(nested)) => get(nested, rest),
        (Some(_), _) => None,
    }
}

fn remove(table: &mut Map<String, Value>, path: &str) -> Option<Value> {
    let (head, rest) = split(path);
    match rest {
        None => table.remove(head),
        Some(rest) => match &mut table.get_mut(head)?.kind {
            ValueKind::Table(nested) => remove(nested, rest),
            _ => None,
        },
    }
}

fn insert(table: &mut Map<String, Value>, path: &str, value: Value) {
    let (head, rest) = split(path);
    let Some(rest) = rest else {
        table.insert(head.to_owned(), value);
        return;
    };
    let entry = table
        .entry(head.to_owned())
        .or_insert_with(|| Value::new(None, Map::<String, Value>::new()));
    if !matches!(entry.kind, ValueKind::Table(_)) {
        *entry = Value::new(None, Map::<String, Value>::new());
    }
    if let ValueKind::Table(nested) = &mut entry.kind {
        insert(nested, rest, value);
    }
}

fn split(path: &str) -> (&str, Option<&str>) {
    match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(toml: &str) -> Map<String, Value> {
        let layer: Box<dyn Source + Send + Sync> =
            Box::new(config::File::from_str(toml, config::FileFormat::Toml));
        vec![layer].collect().unwrap()
    }

    fn text(table: &Map<String, Value>, path: &str) -> String {
        get(table, path).unwrap().to_string()
    }

    #[test]
    fn numbers_in_a_named_unit_become_durations_with_a_note() {
        let mut old = table(
            "[runner]\npoll_ms = 200\n[auth]\nrefresh_token_ttl_days = 30\n\
             [bus]\nretry_delays_ms = [1000, 10000]\noutbox_retention_hours = 168\n\
             [gateway]\nwindow_secs = \"900\"",
        );
        let mut notes = Vec::new();
        upgrade(&mut old, &[], &mut notes);
        assert_eq!(text(&old, "runner.poll"), "200ms");
        assert_eq!(text(&old, "auth.refresh_token_ttl"), "30d");
        assert_eq!(text(&old, "bus.outbox_retention"), "168h");
        assert_eq!(text(&old, "gateway.window"), "900s");
        assert!(get(&old, "runner.poll_ms").is_none());
        assert_eq!(notes.len(), 5, "{notes:?}");
        assert!(
            notes.contains(&"`bus.retry_delays_ms` is an old key, read for one more release: write `bus.retry_delays = [\"1000ms\", \"10000ms\"]` instead".to_owned()),
            "{notes:?}"
        );
    }

    #[test]
    fn a_new_key_in_the_same_layer_wins_and_other_keys_are_left_alone() {
        let mut both =
            table("[runner]\npoll = \"1s\"\npoll_ms = 200\nname_ms = \"fast\"\nmax_attempts = 3");
        let mut notes = Vec::new();
        upgrade(&mut both, &[], &mut notes);
        assert_eq!(text(&both, "runner.poll"), "1s");
        assert_eq!(text(&both, "runner.name_ms"), "fast");
        assert_eq!(text(&both, "runner.max_attempts"), "3");
        assert_eq!(
            notes,
            ["`runner.poll_ms` is ignored: `runner.poll` is set; remove it"]
        );
    }

    #[test]
    fn a_moved_key_feeds_each_of_its_new_keys() {
        const MOVED: &[Moved] = &[
            Moved {
                from: "upstream.core_url",
                to: &["core.url"],
            },
            Moved {
                from: "upstream.connect_timeout_ms",
                to: &["core.connect_timeout", "search.connect_timeout"],
            },
        ];
        let mut old = table(
            "[upstream]\ncore_url = \"http://core:50051\"\nconnect_timeout_ms = 700\n\
             [search]\nconnect_timeout = \"2s\"",
        );
        let mut notes = Vec::new();
        upgrade(&mut old, MOVED, &mut notes);
        assert_eq!(text(&old, "core.url"), "http://core:50051");
        assert_eq!(text(&old, "core.connect_timeout"), "700ms");
        assert_eq!(text(&old, "search.connect_timeout"), "2s");
        assert_eq!(
            notes,
            [
                "`upstream.core_url` is an old key, read for one more release: write `core.url` instead",
                "`upstream.connect_timeout_ms` is an old key, read for one more release: write `core.connect_timeout` instead",
            ]
        );
    }
}
