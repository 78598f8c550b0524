//! Free text end to end: any string in any free-text field is either refused with a 422 naming
//! the field, or accepted and then read back byte for byte (as stored: trimmed where the field
//! is trimmed) from every read model that holds it. The strings are generated (proptest), biased
//! towards what breaks storage: NUL and other controls, combining marks, astral characters, a
//! written-out `\u0000`, quotes, backslashes and lengths around the limits.
//!
//! Cases are batched: each order or purchase carries several generated fields at once, the
//! requests run concurrently, and the read side is asked once with the merged consistency token.
//! The domain's own types say which strings must be refused; the edge must agree with them.

use std::time::Duration;

use domain::order::{CancelReason, Carrier, OrderName, OrderNote, TrackingNumber};
use domain::pricing::{ItemName, Sku};
use domain::purchase::{RefundReason, Username};
use domain::validation::{bounded_lines, bounded_text};
use domain::InvalidField;
use futures::future::join_all;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use service_kit::testing::wait_until;
use service_kit::ConsistencyToken;
use uuid::Uuid;

use crate::helpers::{spawn_stack, strings, Stack};

/// Orders placed; every other one is then cancelled, the rest shipped.
const ORDERS: usize = 12;
const ITEMS_PER_ORDER: usize = 3;
const PURCHASES: usize = 8;
const REFUNDS: usize = 8;

/// What the edge allows for fields that are checked there only and never stored: the card
/// holder's name and the billing address (documented in the README's purchase field table).
const MAX_HOLDER_NAME_CHARS: usize = 200;
const MAX_BILLING_ADDRESS_CHARS: usize = 500;

/// Strings that have broken, or could break, a read model; every run tries them first.
fn notorious() -> Vec<String> {
    [
        "\u{0}",
        "x\u{0}y",
        "\\u0000",
        "Zoe\u{308}",
        "Zoë",
        "𝄞 🎉 \u{10ffff}",
        "\"quoted\" 'single' \\back\\slash\\",
        "\u{85}next line\u{85}",
        "tab\there",
        "line\nbreak",
        "crlf\r\nbreak",
        "del\u{7f}",
        "c1\u{9f}",
        "  padded  ",
        "\u{301}leading mark",
        "\u{212b}ngstrom sign",
        "\u{feff}bom",
        "",
        "   ",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        "é".repeat(200),
        "x".repeat(201),
        "é".repeat(2_000),
        "e\u{301}".repeat(10),
    ])
    .collect()
}

/// Any text up to about `longest` characters.
fn any_text(longest: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any::<char>().prop_map(String::from),
        2 => prop_oneof![0_u32..0x20, 0x7f_u32..0xa0].prop_map(|c| char::from_u32(c).unwrap().to_string()),
        2 => prop::sample::select(vec!['\u{301}', '\u{308}', '\u{327}', '\u{20dd}']).prop_map(String::from),
        2 => prop::sample::select(vec!["\\u0000", "\"", "\\", "'", "e\u{301}", "é", "𝄞", "\u{1f600}", " ", "\u{85}"])
            .prop_map(str::to_owned),
        6 => "[a-zA-Z0-9 ]{1,6}",
    ];
    let short = prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat());
    let long = (
        prop::sample::select(vec!['x', 'é', '𝄞', '\u{0}', '\u{301}']),
        0..=longest,
    )
        .prop_map(|(c, n)| std::iter::repeat_n(c, n).collect::<String>());
    prop_oneof![5 => short, 1 => long]
}

/// A SKU-like string half of the time, so that some are accepted.
fn any_sku() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9._-]{1,70}", any_text(80)]
}

/// Draws `count` strings: the notorious ones first, then generated ones.
fn draw(runner: &mut TestRunner, strategy: impl Strategy<Value = String>, count: usize) -> Vec<String> {
    let mut drawn = notorious();
    while drawn.len() < count {
        drawn.push(strategy.new_tree(runner).unwrap().current());
    }
    drawn.truncate(count);
    drawn
}

/// A generated value in one field of a request body.
#[derive(Debug)]
struct Case {
    /// The field a problem names, e.g. `items[1].name`.
    field: String,
    /// Where the value goes in the body, as a JSON pointer.
    pointer: String,
    raw: String,
    /// What the domain makes of it: the value as stored, or why it is refused.
    verdict: Result<String, InvalidField>,
    /// Sent instead once the edge has refused `raw`, so that the other cases go through.
    stand_in: String,
    refused: bool,
}

impl Case {
    fn new(field: String, pointer: String, raw: String, rule: impl Fn(&str) -> Result<String, InvalidField>) -> Self {
        let verdict = rule(&raw);
        // Valid in every field, SKUs included.
        let stand_in = format!("stand-in-{}", Uuid::new_v4().simple());
        Self {
            field,
            pointer,
            raw,
            verdict,
            stand_in,
            refused: false,
        }
    }

    /// A case for `field` at the top of the request body.
    fn top_level(field: &str, raw: String, rule: impl Fn(&str) -> Result<String, InvalidField>) -> Self {
        Self::new(field.into(), format!("/{field}"), raw, rule)
    }

    /// The value the read models must hold for this field once its request is accepted.
    fn stored(&self) -> &str {
        if self.refused {
            &self.stand_in
        } else {
            self.verdict.as_deref().unwrap()
        }
    }
}

/// Sends `body` with the cases filled in until the edge accepts it: each 422 must name a case
/// the domain refuses, which is then replaced by its stand-in; the accepted request must hold
/// only cases the domain accepts. Returns the accepted answer.
async fn submit(stack: &Stack, path: &str, mut body: Value, cases: &mut [Case], accepted: u16) -> Value {
    loop {
        for case in cases.iter() {
            let value = if case.refused { &case.stand_in } else { &case.raw };
            *body.pointer_mut(&case.pointer).unwrap() = json!(value);
        }
        let response = stack.command(path, &body).send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        if status == accepted {
            for case in cases.iter().filter(|c| !c.refused) {
                assert!(
                    case.verdict.is_ok(),
                    "{path}: `{}` = {:?} was accepted, but the domain refuses it: {:?}",
                    case.field,
                    case.raw,
                    case.verdict
                );
            }
            return answer;
        }
        assert_eq!(status, 422, "{path}: {answer}");
        assert_eq!(answer["type"], "/problems/invalid-field", "{answer}");
        let field = answer["field"].as_str().unwrap();
        let case = cases
            .iter_mut()
            .find(|c| c.field == field && !c.refused)
            .unwrap_or_else(|| panic!("{path}: a 422 for `{field}`, which holds no generated value: {answer}"));
        let Err(expected) = &case.verdict else {
            panic!(
                "{path}: `{field}` = {:?} was refused, but the domain accepts it: {answer}",
                case.raw
            );
        };
        let detail = answer["detail"].as_str().unwrap();
        assert!(
            detail.ends_with(&expected.problem.to_string()),
            "{:?}: {detail} is not {expected}",
            case.raw
        );
        case.refused = true;
    }
}

fn token_of(answer: &Value) -> ConsistencyToken {
    ConsistencyToken::decode(answer["consistency_token"].as_str().unwrap()).unwrap()
}

/// Percent-encodes every byte but the unreserved ones, for a path segment.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One order's generated fields, by what they are.
struct OrderCases {
    place: Vec<Case>,
    /// The cancel reason, or the carrier and tracking number.
    then: Vec<Case>,
    cancel: bool,
}

fn order_cases(index: usize, runner: &mut TestRunner, texts: &mut impl Iterator<Item = String>) -> OrderCases {
    let mut place = vec![
        Case::top_level("name", texts.next().unwrap(), |raw| {
            OrderName::parse(raw).map(String::from)
        }),
        Case::top_level("note", texts.next().unwrap(), |raw| {
            OrderNote::parse(raw).map(String::from)
        }),
    ];
    for item in 0..ITEMS_PER_ORDER {
        place.push(Case::new(
            format!("items[{item}].name"),
            format!("/items/{item}/name"),
            texts.next().unwrap(),
            |raw| ItemName::parse(raw).map(String::from),
        ));
        place.push(Case::new(
            format!("items[{item}].sku"),
            format!("/items/{item}/sku"),
            any_sku().new_tree(runner).unwrap().current(),
            |raw| Sku::parse(raw).map(String::from),
        ));
    }
    let cancel = index.is_multiple_of(2);
    let then = if cancel {
        vec![Case::top_level("reason", texts.next().unwrap(), |raw| {
            CancelReason::parse(raw).map(String::from)
        })]
    } else {
        vec![
            Case::top_level("carrier", texts.next().unwrap(), |raw| {
                Carrier::parse(raw).map(String::from)
            }),
            Case::top_level("tracking_number", texts.next().unwrap(), |raw| {
                TrackingNumber::parse(raw).map(String::from)
            }),
        ]
    };
    OrderCases { place, then, cancel }
}

/// Places one order, then cancels or ships it; returns its id and the last consistency token.
async fn run_order(stack: &Stack, cases: &mut OrderCases) -> (String, ConsistencyToken) {
    let items: Vec<Value> = (0..ITEMS_PER_ORDER)
        .map(|_| json!({"sku": "", "name": "", "quantity": 1, "unit_price": 1.00}))
        .collect();
    let body = json!({"name": "", "note": "", "currency": "USD", "items": items});
    let placed = submit(stack, "/api/v1/orders", body, &mut cases.place, 201).await;
    let order_id = placed["order_id"].as_str().unwrap().to_owned();
    let mut token = token_of(&placed);
    let next = |verb: &str| format!("/api/v1/orders/{order_id}/{verb}");
    let answer = if cases.cancel {
        let body = json!({"reason": ""});
        submit(stack, &next("cancel"), body, &mut cases.then, 200).await
    } else {
        for verb in ["confirm", "start-processing"] {
            token = token.merge(&token_of(&stack.post(&next(verb), json!({}), 200).await));
        }
        let body = json!({"carrier": "", "tracking_number": ""});
        submit(stack, &next("ship"), body, &mut cases.then, 200).await
    };
    (order_id, token.merge(&token_of(&answer)))
}

/// The order read back from `order_status`, `order_history` and `track_user`.
async fn check_order(stack: &Stack, order_id: &str, cases: &OrderCases, token: &str) {
    let stored = |field: &str| {
        cases
            .place
            .iter()
            .chain(&cases.then)
            .find(|c| c.field == field)
            .unwrap()
            .stored()
    };
    let (status, order, _) = stack
        .get(&format!("/api/v1/orders/{order_id}?consistency_token={token}"))
        .await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["name"], stored("name"), "order_status name");
    assert_eq!(order["note"], stored("note"), "order_status note");
    if cases.cancel {
        assert_eq!(order["status"], "cancelled");
        assert_eq!(order["cancel_reason"], stored("reason"), "order_status cancel_reason");
    } else {
        assert_eq!(order["status"], "shipped");
        assert_eq!(order["carrier"], stored("carrier"), "order_status carrier");
        assert_eq!(
            order["tracking_number"],
            stored("tracking_number"),
            "order_status tracking_number"
        );
    }

    let (status, history, _) = stack
        .get(&format!("/api/v1/orders/{order_id}/history?consistency_token={token}"))
        .await;
    assert_eq!(status, 200, "{history}");
    let events = history["events"].as_array().unwrap();
    let placed = &events[0]["data"];
    assert_eq!(placed["name"], stored("name"), "order_history name");
    assert_eq!(placed["note"], stored("note"), "order_history note");
    for item in 0..ITEMS_PER_ORDER {
        let held = &placed["details"]["items"][item];
        assert_eq!(held["name"], stored(&format!("items[{item}].name")), "item name");
        assert_eq!(held["sku"], stored(&format!("items[{item}].sku")), "item sku");
    }
    let last = &events.last().unwrap()["data"];
    if cases.cancel {
        assert_eq!(last["reason"], stored("reason"), "order_history reason");
    } else {
        assert_eq!(last["carrier"], stored("carrier"), "order_history carrier");
        assert_eq!(
            last["tracking_number"],
            stored("tracking_number"),
            "order_history tracking_number"
        );
    }

    // `.` and `..` are path segments no HTTP client sends as they are.
    let name = stored("name");
    if name != "." && name != ".." {
        let (status, user, _) = stack
            .get(&format!(
                "/api/v1/track-users/{}?consistency_token={token}",
                path_segment(name)
            ))
            .await;
        assert_eq!(status, 200, "track_user {name:?}: {user}");
        assert_eq!(user["name"], name, "track_user name");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn any_text_in_an_order_is_refused_or_read_back_byte_for_byte() {
    let stack = spawn_stack().await;
    let mut runner = TestRunner::default();
    let mut texts = draw(&mut runner, any_text(520), ORDERS * 8).into_iter();
    let notes = draw(&mut runner, any_text(2_100), ORDERS);
    let mut orders: Vec<OrderCases> = (0..ORDERS)
        .map(|index| order_cases(index, &mut runner, &mut texts))
        .collect();
    // Notes are long-lived free text: they get their own, longer draw.
    for (order, note) in orders.iter_mut().zip(notes) {
        let case = order.place.iter_mut().find(|c| c.field == "note").unwrap();
        *case = Case::top_level("note", note, |raw| OrderNote::parse(raw).map(String::from));
    }

    let placed = join_all(orders.iter_mut().map(|cases| run_order(&stack, cases))).await;
    let token = placed
        .iter()
        .fold(ConsistencyToken::default(), |all, (_, token)| all.merge(token))
        .encode();
    for ((order_id, _), cases) in placed.iter().zip(&orders) {
        check_order(&stack, order_id, cases, &token).await;
    }

    let cases: Vec<&Case> = orders.iter().flat_map(|o| o.place.iter().chain(&o.then)).collect();
    let refused = cases.iter().filter(|c| c.refused).count();
    assert!(
        refused > 0 && refused < cases.len(),
        "{refused} of {} refused: the cases should test both sides",
        cases.len()
    );

    let (status, users, _) = stack
        .get(&format!("/api/v1/track-users?limit=500&consistency_token={token}"))
        .await;
    assert_eq!(status, 200, "{users}");
    let counted: i64 = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["counter"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, ORDERS as i64, "every order counted under its name");
}

fn purchase_cases(texts: &mut impl Iterator<Item = String>) -> Vec<Case> {
    vec![
        Case::top_level("username", texts.next().unwrap(), |raw| {
            Username::parse(raw).map(String::from)
        }),
        Case::top_level("card_holder_name", texts.next().unwrap(), |raw| {
            bounded_text("card_holder_name", raw, MAX_HOLDER_NAME_CHARS)
        }),
        Case::top_level("billing_address", texts.next().unwrap(), |raw| {
            bounded_lines("billing_address", raw, MAX_BILLING_ADDRESS_CHARS)
        }),
    ]
}

fn purchase_body(user_id: Uuid) -> Value {
    json!({
        "user_id": user_id,
        "username": "",
        "amount": 100.50,
        "currency": "USD",
        "payment_method": "credit_card",
        "card_holder_name": "",
        "card_number": "4242 4242 4242 4242",
        "card_expiry": "12/30",
        "card_cvc": "123",
        "billing_address": "",
        "transaction_date": chrono::Utc::now().to_rfc3339(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn any_text_in_a_purchase_or_refund_is_refused_or_read_back_byte_for_byte() {
    let stack = spawn_stack().await;
    let mut runner = TestRunner::default();
    let mut texts = draw(&mut runner, any_text(520), PURCHASES * 3).into_iter();
    let user_id = Uuid::new_v4();
    let mut purchases: Vec<Vec<Case>> = (0..PURCHASES).map(|_| purchase_cases(&mut texts)).collect();

    let accepted = join_all(
        purchases
            .iter_mut()
            .map(|cases| submit(&stack, "/api/v1/purchases", purchase_body(user_id), cases, 202)),
    )
    .await;
    let token = accepted
        .iter()
        .fold(ConsistencyToken::default(), |all, answer| all.merge(&token_of(answer)))
        .encode();
    for (answer, cases) in accepted.iter().zip(&purchases) {
        let purchase_id = answer["purchase_id"].as_str().unwrap();
        let (status, purchase, _) = stack
            .get(&format!("/api/v1/purchases/{purchase_id}?consistency_token={token}"))
            .await;
        assert_eq!(status, 200, "{purchase}");
        assert_eq!(purchase["username"], cases[0].stored(), "purchases username");
    }
    let (status, page, _) = stack
        .get(&format!(
            "/api/v1/users/{user_id}/purchases?limit=100&consistency_token={token}"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let mut listed = strings(&page, "items", "username");
    let mut expected: Vec<&str> = purchases.iter().map(|cases| cases[0].stored()).collect();
    listed.sort_unstable();
    expected.sort_unstable();
    assert_eq!(listed, expected, "a user's purchases list the usernames as stored");
    let (_, spend, _) = stack
        .get(&format!("/api/v1/users/{user_id}/spend?consistency_token={token}"))
        .await;
    assert_eq!(spend["currencies"][0]["purchases"], PURCHASES);

    // Refund reasons, one cent at a time, on a purchase the gateway has authorized.
    let purchase_id = accepted[0]["purchase_id"].as_str().unwrap();
    stack
        .get_when(&format!("/api/v1/purchases/{purchase_id}"), "status", "authorized")
        .await;
    let mut refunds: Vec<Vec<Case>> = draw(&mut runner, any_text(520), REFUNDS)
        .into_iter()
        .map(|raw| {
            vec![Case::top_level("reason", raw, |raw| {
                RefundReason::parse(raw).map(String::from)
            })]
        })
        .collect();
    let path = format!("/api/v1/purchases/{purchase_id}/refunds");
    let refunded = join_all(
        refunds
            .iter_mut()
            .map(|cases| submit(&stack, &path, json!({"amount": 0.01, "reason": ""}), cases, 202)),
    )
    .await;
    let accepted = refunded
        .iter()
        .filter(|answer| answer["status"] == "refund_requested")
        .count();
    // Each accepted refund is paid back by the gateway after its answer, then projected.
    wait_until("every refund to be paid back", Duration::from_secs(30), || async {
        let (status, purchase, _) = stack.get(&format!("/api/v1/purchases/{purchase_id}")).await;
        (status == 200 && purchase["refunded"]["minor"] == accepted).then_some(())
    })
    .await;
    assert_eq!(accepted, REFUNDS, "every refund accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_note_is_a_422_naming_the_note() {
    let stack = spawn_stack().await;
    let answer = stack
        .post("/api/v1/orders", json!({"name": "x", "note": "\u{0}"}), 422)
        .await;
    assert_eq!(answer["field"], "note");
    assert_eq!(
        answer["detail"],
        "`note` must not contain control characters other than tab and newline (found U+0000)"
    );
    let answer = stack.post("/api/v1/orders", json!({"name": "Zoe\u{308}"}), 422).await;
    assert_eq!(answer["field"], "name");
    assert!(answer["detail"].as_str().unwrap().contains("NFC"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_is_not_utf8_is_refused_whole() {
    let stack = spawn_stack().await;
    for body in [
        b"{\"name\":\"x\xff\"}".to_vec(),
        br#"{"name":"\ud800"}"#.to_vec(),
        b"{\"name\":\"raw\x00nul\"}".to_vec(),
    ] {
        let response = stack
            .client
            .post(format!("{}/api/v1/orders", stack.commands))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{:?}", String::from_utf8_lossy(&body));
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/malformed-body");
    }
}
