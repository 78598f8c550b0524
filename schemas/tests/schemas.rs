//! Checked-in schemas match the code; every fixture of every version still decodes.

use std::fs;
use std::path::{Path, PathBuf};

use domain::{Command, DecodeError, Event, Message};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn checked_in_schemas_match_the_domain_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut drifted = Vec::new();
    for (message_type, schema) in schemas::generated() {
        let path = crate_dir().join(schemas::schema_path(message_type));
        let generated = schemas::render(&schema);
        if update {
            fs::write(&path, &generated).unwrap();
            continue;
        }
        let checked_in = fs::read_to_string(&path).unwrap_or_default();
        if checked_in != generated {
            drifted.push(path.display().to_string());
        }
    }
    assert!(
        drifted.is_empty(),
        "schemas drifted from the domain types: {drifted:?}; if the change is deliberate and old \
         fixtures still decode, rerun with UPDATE_SCHEMAS=1 and check the files in"
    );
}

#[test]
fn every_message_type_has_a_schema_and_fixtures() {
    for (message_type, _) in schemas::generated() {
        assert!(
            crate_dir().join(schemas::schema_path(message_type)).exists(),
            "{message_type} has no schema"
        );
        assert!(!fixtures(message_type).is_empty(), "{message_type} has no fixture");
    }
}

#[test]
fn every_fixture_of_every_version_decodes() {
    let dir = crate_dir().join("fixtures");
    let mut decoded = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let type_dir = entry.unwrap().path();
        let message_type = type_dir.file_name().unwrap().to_str().unwrap().to_owned();
        for fixture in fixtures(&message_type) {
            let data = fs::read(&fixture).unwrap();
            let result = match Event::decode(&message_type, &data) {
                Err(DecodeError::UnknownType(_)) => Command::decode(&message_type, &data).map(drop),
                other => other.map(drop),
            };
            assert!(
                result.is_ok(),
                "{} no longer decodes: {:?}",
                fixture.display(),
                result.err()
            );
            decoded += 1;
        }
    }
    assert!(decoded >= 2);
}

fn fixtures(message_type: &str) -> Vec<PathBuf> {
    let dir: &Path = &crate_dir().join("fixtures").join(message_type);
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}
