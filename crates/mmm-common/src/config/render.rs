//! [`render_effective`]: the effective configuration (templates applied, defaults filled) as
//! TOML, for a config check's output. Passwords are masked; durations are written as decimal
//! seconds; a host's tools directives as a table.

use toml::Value;

use super::model::Config;

/// The mask written instead of a password.
pub const PASSWORD_MASK: &str = "********";

/// Whether a directive holds a secret.
fn is_secret(key: &str) -> bool {
    key.ends_with("password")
}

/// Rewrites serde's shapes into readable TOML: `{secs, nanos}` → seconds, `tools` pairs →
/// a table, passwords masked.
fn tidy(value: Value) -> Value {
    match value {
        Value::Table(table) => {
            if table.len() == 2 {
                if let (Some(Value::Integer(secs)), Some(Value::Integer(nanos))) =
                    (table.get("secs"), table.get("nanos"))
                {
                    let secs = *secs as f64 + *nanos as f64 / 1e9;
                    return if secs.fract() == 0.0 && secs < 9.0e15 {
                        Value::Integer(secs as i64)
                    } else {
                        Value::Float(secs)
                    };
                }
            }
            let mut out = toml::map::Map::new();
            for (key, v) in table {
                let v = match (key.as_str(), v) {
                    ("tools", Value::Array(pairs)) => {
                        let mut tools = toml::map::Map::new();
                        for pair in pairs {
                            if let Value::Array(kv) = pair {
                                if let [Value::String(k), Value::String(val)] = kv.as_slice() {
                                    let val = if is_secret(k) {
                                        PASSWORD_MASK.to_string()
                                    } else {
                                        val.clone()
                                    };
                                    tools.insert(k.clone(), Value::String(val));
                                }
                            }
                        }
                        Value::Table(tools)
                    }
                    (k, Value::String(_)) if is_secret(k) => {
                        Value::String(PASSWORD_MASK.to_string())
                    }
                    (_, v) => tidy(v),
                };
                out.insert(key, v);
            }
            Value::Table(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(tidy).collect()),
        other => other,
    }
}

/// The effective configuration as TOML, passwords masked as `********`.
pub fn render_effective(cfg: &Config) -> String {
    match Value::try_from(cfg) {
        Ok(value) => toml::to_string(&tidy(value))
            .unwrap_or_else(|e| format!("# could not render the configuration: {e}\n")),
        Err(e) => format!("# could not render the configuration: {e}\n"),
    }
}
