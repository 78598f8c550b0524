//! The JSON Schemas of every command and event version orderstream has written, generated from
//! the `domain` types and checked in under `json/`, plus fixture messages of every version
//! under `fixtures/<type>/`.
//!
//! The versions come from the message tables in `domain` (`domain::Command::schemas` and
//! `domain::Event::schemas`), so a new version is declared there once and its schema and
//! fixtures are then demanded by the tests here.
//!
//! The tests fail when a checked-in schema differs from what the code generates (run them with
//! `UPDATE_SCHEMAS=1` to rewrite the files after a deliberate change) and when a fixture no
//! longer decodes, so a change that would strand old events on the log cannot pass unnoticed.
//!
//! A superseded version keeps its schema, generated from its frozen struct in
//! `domain::order::upcast` or `domain::purchase::upcast`; `UPDATE_SCHEMAS=1` never rewrites it,
//! so it must stay byte-identical to the file checked in when that version was current.

use domain::message::VersionSchema;
use domain::{Command, Event};
use schemars::Schema;

/// Every message version, by its type name, with the schema the code generates for it.
pub fn generated() -> Vec<VersionSchema> {
    [Command::schemas(), Event::schemas()]
        .into_iter()
        .flatten()
        .map(|version| VersionSchema {
            schema: titled(version.schema, version.message_type),
            ..version
        })
        .collect()
}

/// Names the schema after the wire type, the name consumers know it by.
fn titled(mut schema: Schema, message_type: &str) -> Schema {
    schema.insert("$id".to_owned(), format!("{message_type}.schema.json").into());
    schema
}

/// The checked-in file for `message_type`, relative to this crate.
pub fn schema_path(message_type: &str) -> String {
    format!("json/{message_type}.schema.json")
}

/// Pretty JSON with a trailing newline, as checked in.
pub fn render(schema: &Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("schema serialises");
    text.push('\n');
    text
}
