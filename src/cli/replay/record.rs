//! The journal records the dry run reads: one line of `journalctl -o json` each.

use serde_json::Value;

use crate::journal::{MESSAGE_ID_AUDIT, MESSAGE_ID_DENIED, MESSAGE_ID_SUPPRESSED};

/// One verdict record, with the fields the replay reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// `__REALTIME_TIMESTAMP`: microseconds since the epoch.
    pub time: u64,
    /// `UNITARMOR_ACTION=`: deny, would-deny or audit.
    pub action: String,
    pub class: String,
    pub operation: String,
    /// The path or socket name, byte for byte.
    pub path: Option<Vec<u8>>,
    pub address: Option<String>,
    pub protocol: Option<String>,
    pub port: Option<String>,
    pub family: Option<String>,
    pub socket_type: Option<String>,
    pub capability: Option<String>,
    pub rule: String,
    pub rule_source: String,
    pub protection: Option<String>,
    /// `UNITARMOR_EXE=`: the executable of the process (decides `from=` rules).
    pub exe: Option<Vec<u8>>,
    /// Learned signals and traces (classes `signal` and `ptrace`): the unit aimed at.
    pub peer: Option<String>,
}

/// A summary of suppressed records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub time: u64,
    pub rule: String,
    pub rule_source: String,
    pub count: u64,
    /// Written by this version; older daemons' summaries lack them.
    pub class: Option<String>,
    pub action: Option<String>,
    pub window: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Record(Box<Record>),
    Summary(Summary),
}

/// A field's value: a string, an array of bytes (not UTF-8, or not printable), or, for a field
/// a record repeats, an array of those (the first is taken).
fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.clone().into_bytes()),
        Value::Array(items) if items.iter().all(Value::is_u64) => items
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect(),
        Value::Array(items) => items.first().and_then(bytes),
        _ => None,
    }
}

fn text(obj: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    obj.get(name)
        .and_then(bytes)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Parses one line of `journalctl -o json`: Ok(None) for a record that is none of the
/// daemon's verdict records or summaries.
pub fn parse_line(line: &str) -> Result<Option<Entry>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let field = |name: &str| text(obj, name);
    let time = field("__REALTIME_TIMESTAMP")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let id = field("MESSAGE_ID").unwrap_or_default();
    if id == MESSAGE_ID_SUPPRESSED {
        let count = field("UNITARMOR_SUPPRESSED").and_then(|c| c.parse().ok());
        return Ok(count.map(|count| {
            Entry::Summary(Summary {
                time,
                rule: field("UNITARMOR_RULE").unwrap_or_default(),
                rule_source: field("UNITARMOR_RULE_SOURCE").unwrap_or_default(),
                count,
                class: field("UNITARMOR_CLASS"),
                action: field("UNITARMOR_ACTION"),
                window: field("UNITARMOR_WINDOW").and_then(|w| w.parse().ok()),
            })
        }));
    }
    if id != MESSAGE_ID_DENIED && id != MESSAGE_ID_AUDIT {
        return Ok(None);
    }
    Ok(Some(Entry::Record(Box::new(Record {
        time,
        action: field("UNITARMOR_ACTION").unwrap_or_default(),
        class: field("UNITARMOR_CLASS").unwrap_or_default(),
        operation: field("UNITARMOR_OPERATION").unwrap_or_default(),
        path: obj.get("UNITARMOR_PATH").and_then(bytes),
        address: field("UNITARMOR_ADDRESS"),
        protocol: field("UNITARMOR_PROTOCOL"),
        port: field("UNITARMOR_PORT"),
        family: field("UNITARMOR_FAMILY"),
        socket_type: field("UNITARMOR_SOCKET_TYPE"),
        capability: field("UNITARMOR_CAPABILITY"),
        rule: field("UNITARMOR_RULE").unwrap_or_default(),
        rule_source: field("UNITARMOR_RULE_SOURCE").unwrap_or_default(),
        protection: field("UNITARMOR_PROTECTION").filter(|p| !p.is_empty()),
        exe: obj.get("UNITARMOR_EXE").and_then(bytes),
        peer: None,
    }))))
}
