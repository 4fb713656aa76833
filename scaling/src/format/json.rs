//! Typed, path-aware reading of JSON values: every error names the field it
//! is about (`spec.metrics[0].resource.target.averageUtilization`).

use crate::error::{Error, Result};
use crate::model::ResourceList;
use crate::quantity::Quantity;
use crate::selector::Labels;
use crate::time::{Duration, Time};
use serde_json::{Map, Value};

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn input_error(field: &str, message: impl Into<String>) -> Error {
    Error::Input {
        field: if field.is_empty() {
            "input".to_string()
        } else {
            field.to_string()
        },
        message: message.into(),
    }
}

pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn expected(path: &str, what: &str, v: &Value) -> Error {
    input_error(path, format!("expected {what}, found {}", json_type(v)))
}

pub(super) fn missing(path: &str, what: &str) -> Error {
    input_error(path, format!("required {what} is missing"))
}

/// Typed access to the fields of one JSON object.
pub(super) struct Obj<'a> {
    pub(super) map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    pub(super) fn new(value: &'a Value, path: &str) -> Result<Obj<'a>> {
        match value {
            Value::Object(map) => Ok(Obj {
                map,
                path: path.to_string(),
            }),
            other => Err(expected(path, "an object", other)),
        }
    }

    pub(super) fn field_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The field, with JSON `null` treated as absent.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>> {
        self.get(key)
            .map(|v| Obj::new(v, &self.field_path(key)))
            .transpose()
    }

    pub(super) fn req_obj(&self, key: &str) -> Result<Obj<'a>> {
        self.opt_obj(key)?
            .ok_or_else(|| missing(&self.field_path(key), "object"))
    }

    pub(super) fn opt_array(&self, key: &str) -> Result<Option<Vec<(String, &'a Value)>>> {
        let path = self.field_path(key);
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{path}[{i}]"), v))
                    .collect(),
            )),
            Some(other) => Err(expected(&path, "an array", other)),
        }
    }

    pub(super) fn array(&self, key: &str) -> Result<Vec<(String, &'a Value)>> {
        Ok(self.opt_array(key)?.unwrap_or_default())
    }

    pub(super) fn opt_str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(expected(&self.field_path(key), "a string", other)),
        }
    }

    pub(super) fn str_or(&self, key: &str, default: &str) -> Result<String> {
        Ok(self.opt_str(key)?.unwrap_or(default).to_string())
    }

    pub(super) fn req_str(&self, key: &str) -> Result<String> {
        self.opt_str(key)?
            .map(str::to_string)
            .ok_or_else(|| missing(&self.field_path(key), "string"))
    }

    pub(super) fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(expected(&self.field_path(key), "a boolean", other)),
        }
    }

    pub(super) fn opt_i32(&self, key: &str) -> Result<Option<i32>> {
        self.get(key)
            .map(|v| int32(v, &self.field_path(key)))
            .transpose()
    }

    pub(super) fn req_i32(&self, key: &str) -> Result<i32> {
        self.opt_i32(key)?
            .ok_or_else(|| missing(&self.field_path(key), "integer"))
    }

    pub(super) fn opt_number(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| input_error(&self.field_path(key), "expected a finite number")),
            Some(other) => Err(expected(&self.field_path(key), "a number", other)),
        }
    }

    pub(super) fn opt_seconds(&self, key: &str) -> Result<Option<Duration>> {
        let path = self.field_path(key);
        match self.get(key) {
            None => Ok(None),
            Some(v @ Value::Number(_)) => seconds(v, &path).map(Some),
            Some(other) => Err(expected(&path, "a number of seconds", other)),
        }
    }

    pub(super) fn opt_quantity(&self, key: &str) -> Result<Option<Quantity>> {
        self.get(key)
            .map(|v| quantity(v, &self.field_path(key)))
            .transpose()
    }

    pub(super) fn req_quantity(&self, key: &str) -> Result<Quantity> {
        self.opt_quantity(key)?
            .ok_or_else(|| missing(&self.field_path(key), "quantity"))
    }

    pub(super) fn opt_time(&self, key: &str) -> Result<Option<Time>> {
        let path = self.field_path(key);
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Time::parse_rfc3339(s)
                .map(Some)
                .map_err(|e| input_error(&path, e.to_string())),
            Some(other) => Err(expected(&path, "an RFC 3339 time string", other)),
        }
    }

    pub(super) fn req_time(&self, key: &str) -> Result<Time> {
        self.opt_time(key)?
            .ok_or_else(|| missing(&self.field_path(key), "time"))
    }

    pub(super) fn opt_string_map(&self, key: &str) -> Result<Labels> {
        let Some(o) = self.opt_obj(key)? else {
            return Ok(Labels::new());
        };
        let mut out = Labels::new();
        for (k, v) in o.map {
            match v {
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                other => return Err(expected(&o.field_path(k), "a string", other)),
            }
        }
        Ok(out)
    }

    pub(super) fn resource_list(&self, key: &str) -> Result<ResourceList> {
        let Some(o) = self.opt_obj(key)? else {
            return Ok(ResourceList::new());
        };
        let mut out = ResourceList::new();
        for (k, v) in o.map {
            out.insert(k.clone(), quantity(v, &o.field_path(k))?.milli_value());
        }
        Ok(out)
    }
}

pub(super) fn int32(v: &Value, path: &str) -> Result<i32> {
    let Value::Number(n) = v else {
        return Err(expected(path, "an integer", v));
    };
    let wide: Option<i128> = if let Some(i) = n.as_i64() {
        Some(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Some(i128::from(u))
    } else {
        n.as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 1e30)
            .map(|f| f as i128)
    };
    let Some(wide) = wide else {
        return Err(input_error(path, format!("expected an integer, found {n}")));
    };
    i32::try_from(wide)
        .map_err(|_| input_error(path, format!("{n} does not fit in a 32-bit integer")))
}

pub(super) fn seconds(v: &Value, path: &str) -> Result<Duration> {
    let Value::Number(n) = v else {
        return Err(expected(path, "a number of seconds", v));
    };
    if let Some(i) = n.as_i64() {
        return Ok(Duration::from_nanos(i128::from(i) * 1_000_000_000));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f.abs() < 1e18 => {
            Ok(Duration::from_nanos((f * 1e9).round() as i128))
        }
        _ => Err(input_error(
            path,
            format!("{n} is not a usable number of seconds"),
        )),
    }
}

pub(super) fn quantity(v: &Value, path: &str) -> Result<Quantity> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                match n.as_f64() {
                    // Rust prints the shortest round-trip decimal, never an exponent.
                    Some(f) if f.is_finite() => format!("{f}"),
                    _ => return Err(input_error(path, format!("{n} is not a quantity"))),
                }
            }
        }
        other => return Err(expected(path, "a quantity (string or number)", other)),
    };
    Quantity::parse(&text).map_err(|e| input_error(path, e.to_string()))
}

pub(super) fn positive_quantity(o: &Obj<'_>, key: &str) -> Result<Option<Quantity>> {
    let q = o.opt_quantity(key)?;
    if let Some(q) = q
        && q.milli_value() <= 0
    {
        return Err(input_error(&o.field_path(key), "a target must be positive"));
    }
    Ok(q)
}
