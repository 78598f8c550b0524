//! Checked-in schemas match the code; every fixture of every version still decodes.

use std::fs;
use std::path::{Path, PathBuf};

use domain::order::{self, Channel, ORDER_PLACED_V1, ORDER_PLACED_V2, ORDER_PLACED_V3};
use domain::purchase;
use domain::{Command, DecodeError, Event, Message};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn checked_in_schemas_match_the_domain_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut drifted = Vec::new();
    for version in schemas::generated() {
        let path = crate_dir().join(schemas::schema_path(version.message_type));
        let generated = schemas::render(&version.schema);
        // History is never rewritten: a superseded version's schema must still match its file.
        if update && !version.superseded {
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
    for version in schemas::generated() {
        let message_type = version.message_type;
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
            let result = decode(&message_type, &data);
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

/// Decodes a fixture the way the projectors and the command side do: through
/// `domain::Event::decode` (or `domain::Command::decode` for commands), the one entry point that
/// upcasts superseded versions.
fn decode(message_type: &str, data: &[u8]) -> Result<(), DecodeError> {
    match Event::decode(message_type, data) {
        Err(DecodeError::UnknownType(_)) => Command::decode(message_type, data).map(drop),
        other => other.map(drop),
    }
}

#[test]
fn fixtures_exist_only_for_known_versions_and_superseded_ones_keep_fixtures() {
    let versions = schemas::generated();
    let known: Vec<&str> = versions.iter().map(|version| version.message_type).collect();
    for entry in fs::read_dir(crate_dir().join("fixtures")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            known.contains(&name.as_str()),
            "fixtures of `{name}`, which has no schema"
        );
    }
    let superseded: Vec<&str> = versions
        .iter()
        .filter(|version| version.superseded)
        .map(|version| version.message_type)
        .collect();
    // The versions superseded so far; history only grows.
    for kept in [
        ORDER_PLACED_V1,
        ORDER_PLACED_V2,
        purchase::PURCHASE_AUTHORIZED_V1,
        purchase::PURCHASE_DECLINED_V1,
    ] {
        assert!(superseded.contains(&kept), "{kept} lost its schema");
    }
    for superseded in superseded {
        assert!(!fixtures(superseded).is_empty(), "{superseded} lost its fixtures");
    }
}

/// A fixture of a version of `OrderPlaced`, decoded through the one entry point.
struct PlacedFixture {
    path: String,
    data: Vec<u8>,
    event: Event,
    placed: order::OrderPlaced,
}

fn placed_fixtures(message_type: &str) -> Vec<PlacedFixture> {
    fixtures(message_type)
        .into_iter()
        .map(|fixture| {
            let data = fs::read(&fixture).unwrap();
            let event = Event::decode(message_type, &data).unwrap();
            let Event::Order(order::Event::OrderPlaced(placed)) = &event else {
                panic!("{} decoded to {event:?}", fixture.display());
            };
            PlacedFixture {
                path: fixture.display().to_string(),
                placed: placed.clone(),
                data,
                event,
            }
        })
        .collect()
}

#[test]
fn v1_order_placed_fixtures_decode_only_through_the_upcast() {
    let v1 = placed_fixtures(ORDER_PLACED_V1);
    assert!(v1.len() >= 3);
    for PlacedFixture {
        path,
        data,
        event,
        placed,
    } in v1
    {
        // Through the one entry point, a v1 event becomes the current shape, placed through the API…
        assert_eq!(placed.channel, Channel::Api, "{path}");
        assert_eq!(event.message_type(), ORDER_PLACED_V3);
        // …written back as v3 only…
        assert_eq!(Event::decode(ORDER_PLACED_V3, &event.encode()).unwrap(), event);
        // …while the same bytes are not v2: without the upcast these fixtures would not decode,
        // and `every_fixture_of_every_version_decodes` would fail.
        assert!(
            matches!(decode(ORDER_PLACED_V2, &data), Err(DecodeError::Malformed { .. })),
            "{path} decodes as v2 without a channel"
        );
    }
}

#[test]
fn v2_order_placed_fixtures_keep_their_channel_and_belong_to_the_user_of_their_details() {
    let mut channels = Vec::new();
    for PlacedFixture {
        path, event, placed, ..
    } in placed_fixtures(ORDER_PLACED_V2)
    {
        channels.push(placed.channel);
        let details_user = placed.details.as_ref().and_then(|details| details.user_id);
        assert_eq!(placed.user_id, details_user, "{path}");
        assert_eq!(event.message_type(), ORDER_PLACED_V3);
    }
    assert!(channels.contains(&Channel::Web), "{channels:?}");
}

#[test]
fn v3_order_placed_fixtures_name_their_owner() {
    let v3 = placed_fixtures(ORDER_PLACED_V3);
    assert!(v3.len() >= 2);
    for PlacedFixture { path, placed, .. } in v3 {
        assert!(placed.user_id.is_some(), "{path}");
    }
}

#[test]
fn v1_purchase_verdicts_decode_without_a_buyer_and_v2_ones_name_it() {
    for (v1, v2) in [
        (purchase::PURCHASE_AUTHORIZED_V1, purchase::PURCHASE_AUTHORIZED_V2),
        (purchase::PURCHASE_DECLINED_V1, purchase::PURCHASE_DECLINED_V2),
    ] {
        for (message_type, named) in [(v1, false), (v2, true)] {
            let files = fixtures(message_type);
            assert!(!files.is_empty(), "{message_type} has no fixture");
            for fixture in files {
                let event = Event::decode(message_type, &fs::read(&fixture).unwrap()).unwrap();
                let buyer = match &event {
                    Event::Purchase(purchase::Event::PurchaseAuthorized(e)) => e.user_id,
                    Event::Purchase(purchase::Event::PurchaseDeclined(e)) => e.user_id,
                    other => panic!("{} decoded to {other:?}", fixture.display()),
                };
                assert_eq!(buyer.is_some(), named, "{}", fixture.display());
                assert_eq!(event.message_type(), v2, "written back as the current version");
            }
        }
    }
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
