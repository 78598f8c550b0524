//! Records no decider or reactor can read, written by hand onto the events, commands, outcomes,
//! verdicts and state changelog topics: none of them stops a partition, and a command with a
//! readable id is answered at once.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use serde_json::{json, Value};
use service_kit::testing::{free_port, wait_until, ChildService, Isolation};
use service_kit::token::ConsistencyToken;
use uuid::Uuid;

use crate::decider::Replica;
use crate::helpers::{
    assert_problem, authorized_client, committed_records, header, headers_of, metric, produce_raw, purchase_events,
    spawn_app, with_header, RawRecord, TestApp,
};
use crate::restart::{start, wait_ready};

/// `bytes` with the first `from` replaced by `to`.
fn replaced(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(from.len())
        .position(|window| window == from)
        .expect("pattern present");
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

/// Places an order named `name` through `orders`; returns the 201 body.
async fn place(client: &reqwest::Client, orders: &str, name: &str) -> Value {
    let response = client.post(orders).json(&json!({"name": name})).send().await.unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Places an order through `app`; returns its id and the command the edge wrote for it, the
/// template of hand-made commands.
async fn placed_order(app: &TestApp) -> (String, OwnedMessage) {
    let placed = app.place(&json!({"name": "John Doe"}), None).await;
    assert_eq!(placed.status(), 201);
    let order_id = placed.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut commands = committed_records(&app.isolation, &app.isolation.topics.commands).await;
    (order_id, commands.swap_remove(0))
}

/// The verdicts on the commands `ids`, once there is one on each.
async fn verdicts_on(app: &TestApp, ids: &[String]) -> Vec<Value> {
    wait_until("a verdict on every command", Duration::from_secs(30), || async {
        let verdicts: Vec<Value> = committed_records(&app.isolation, &app.isolation.topics.outcomes)
            .await
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(r.payload()?).ok())
            .filter(|o| ids.iter().any(|id| o["command_id"] == id.as_str()))
            .collect();
        (verdicts.len() == ids.len()).then_some(verdicts)
    })
    .await
}

/// Asserts that the order's partition carries on: the order can still be confirmed.
async fn assert_confirms(app: &TestApp, order_id: &str) {
    let confirmed = app
        .post(&format!("/api/v1/orders/{order_id}/confirm"), &json!({}), None)
        .await;
    assert_eq!(confirmed.status(), 200, "the partition carries on");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_events_quarantine_only_their_aggregate_and_stop_neither_decider_nor_reactor() {
    let isolation = Isolation::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let orders = format!("{base}/api/v1/orders");
    let client = authorized_client();
    let service = start(&isolation, port);
    wait_ready(&client, &base).await;

    let placed = place(&client, &orders, "John Doe").await;
    let a = placed["order_id"].as_str().unwrap().to_owned();
    let a_partition = placed["events"][0]["partition"].as_i64().unwrap() as i32;
    let events = committed_records(&isolation, &isolation.topics.events).await;
    let template = events
        .iter()
        .find(|e| header(e, "ce_subject") == Some(a.as_str()))
        .unwrap();
    let data: Value = serde_json::from_slice(template.payload().unwrap()).unwrap();
    let [b, c, d, g] = [(); 4].map(|()| Uuid::new_v4().to_string());
    let headers_for = |id: &str| with_header(headers_of(template), "ce_subject", Some(id));
    let data_for = |id: &str| {
        let mut data = data.clone();
        data["order_id"] = json!(id);
        serde_json::to_vec(&data).unwrap()
    };
    let records = vec![
        // No key: the aggregate is named by `ce_subject` only.
        RawRecord {
            partition: Some(a_partition),
            key: None,
            headers: headers_for(&a),
            payload: b"not json".to_vec(),
        },
        // A raw NUL inside a JSON string.
        RawRecord {
            partition: None,
            key: Some(&b),
            headers: headers_for(&b),
            payload: replaced(&data_for(&b), b"John Doe", b"John\0Doe"),
        },
        RawRecord {
            partition: None,
            key: Some(&c),
            headers: with_header(headers_for(&c), "ce_type", Some("orderstream.order.teleported.v1")),
            payload: data_for(&c),
        },
        RawRecord {
            partition: None,
            key: Some(&d),
            headers: with_header(headers_for(&d), "ce_correlationid", None),
            payload: data_for(&d),
        },
        // Nothing names an aggregate.
        RawRecord {
            partition: Some(0),
            key: None,
            headers: Vec::new(),
            payload: b"\x00\x01 garbage".to_vec(),
        },
        // A type the reactor acts on, with data it cannot read.
        RawRecord {
            partition: None,
            key: Some(&g),
            headers: with_header(
                headers_for(&g),
                "ce_type",
                Some(domain::purchase::PURCHASE_REQUESTED_V1),
            ),
            payload: b"{}".to_vec(),
        },
    ];
    produce_raw(&isolation, &isolation.topics.events, records).await;

    // The reactor skips the five it would act on and cannot read (three order placements, for the
    // stock saga; the purchase request; the record without a type) and goes on. The count only
    // settles at five: waiting for a smaller one would pass or not by the moment it is read.
    wait_until("the reactor to skip five events", Duration::from_secs(30), || async {
        (metric(&client, &base, "orderstream_reactor_undecodable_events_total").await == 5).then_some(())
    })
    .await;
    // Records no decider wrote, on the topics the edge and the decider's restore read.
    let foreign = |key: &'static str, payload: &[u8]| RawRecord {
        partition: None,
        key: Some(key),
        headers: Vec::new(),
        payload: payload.to_vec(),
    };
    for (topic, records) in [
        (
            &isolation.topics.outcomes,
            [
                foreign("not-a-command-id", b"not json"),
                foreign("x", b"{\"verdict\":\"teleported\"}"),
            ],
        ),
        (
            &isolation.topics.verdicts,
            [
                foreign("not-a-command-id", b"not json"),
                foreign("y", b"\x00\x01 garbage"),
            ],
        ),
    ] {
        produce_raw(&isolation, topic, records.into()).await;
    }

    // A purchase requested after them is still charged and authorized.
    let (purchase_id, _) = requested_purchase(&client, &base).await;
    purchase_events(&isolation, &purchase_id, domain::purchase::PURCHASE_AUTHORIZED_V2).await;
    service.kill();

    // Records the decider did not write are seen when it rebuilds its state from the log (a
    // decider trusting its changelog never reads the events log); rebuilding reads past every one.
    let mut env = isolation.env();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
    env.push(("DECIDER_REBUILD_STATE", "true".to_owned()));
    let _service = ChildService::spawn(Path::new(env!("CARGO_BIN_EXE_command-api")), &[], &env);
    wait_ready(&client, &base).await;
    assert_eq!(
        metric(&client, &base, "orderstream_decider_undecodable_events_total").await,
        6
    );
    assert_eq!(
        metric(&client, &base, "orderstream_decider_undecodable_verdicts_total").await,
        2
    );
    for id in [&b, &c, &d, &g] {
        let response = client
            .post(&orders)
            .json(&json!({"name": "John Doe", "order_id": id}))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 409, None).await;
        assert_eq!(problem["type"], "/problems/aggregate-quarantined", "{problem}");
        assert_eq!(problem["aggregate_id"], id.as_str());
    }
    let confirm = client.post(format!("{orders}/{a}/confirm")).send().await.unwrap();
    let problem = assert_problem(confirm, 409, None).await;
    assert_eq!(problem["type"], "/problems/aggregate-quarantined");

    // Every other aggregate carries on, on the quarantined ones' partitions too.
    let mut landed_on = Vec::new();
    while !landed_on.contains(&a_partition) {
        assert!(landed_on.len() < 30, "no new order landed on partition {a_partition}");
        let placed = place(&client, &orders, "Jane Doe").await;
        landed_on.push(placed["events"][0]["partition"].as_i64().unwrap() as i32);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_that_does_not_decode_is_refused_at_once_and_its_partition_carries_on() {
    let app = spawn_app().await;
    let (order_id, template) = placed_order(&app).await;
    let template = &template;
    let payload = template.payload().unwrap().to_vec();
    let ids = [(); 4].map(|()| Uuid::new_v4().to_string());
    let with_id = |id: &str| with_header(headers_of(template), "ce_id", Some(id));
    // All on the order's key, so on its partition.
    let record = |headers, payload| RawRecord {
        partition: None,
        key: Some(&order_id),
        headers,
        payload,
    };
    let records = vec![
        record(with_id(&ids[0]), b"{\"order_id\": ".to_vec()),
        record(with_id(&ids[1]), replaced(&payload, b"John Doe", b"John\0Doe")),
        record(
            with_header(with_id(&ids[2]), "ce_type", Some("orderstream.order.teleport.v1")),
            payload.clone(),
        ),
        record(with_header(with_id(&ids[3]), "ce_correlationid", None), payload.clone()),
        record(Vec::new(), b"no headers at all".to_vec()),
    ];
    let started = Instant::now();
    produce_raw(&app.isolation, &app.isolation.topics.commands, records).await;

    let refusals = verdicts_on(&app, &ids).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered in {:?}, not at once",
        started.elapsed()
    );
    for refusal in refusals {
        assert_eq!(refusal["verdict"], "refused", "{refusal}");
        assert_eq!(refusal["refusal"]["reason"], "undecodable", "{refusal}");
        assert_eq!(refusal["aggregate_id"], order_id.as_str());
    }

    assert_confirms(&app, &order_id).await;
    assert_eq!(
        metric(
            &app.client,
            &app.address,
            "orderstream_decider_undecodable_commands_total"
        )
        .await,
        5
    );
    assert_eq!(
        metric(&app.client, &app.address, "orderstream_decider_refusals_total").await,
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_naming_a_reply_partition_the_outcomes_topic_lacks_are_answered_on_their_key() {
    let app = spawn_app().await;
    let (order_id, template) = placed_order(&app).await;
    let template = &template;
    let bad_replies = ["not-a-partition", "-1", "4096", "", "1e2"];
    let ids = bad_replies.map(|_| Uuid::new_v4().to_string());
    let records = bad_replies
        .iter()
        .zip(&ids)
        .map(|(reply, id)| RawRecord {
            partition: None,
            key: Some(&order_id),
            headers: with_header(
                with_header(headers_of(template), "ce_id", Some(id)),
                command_api::reply::REPLY_PARTITION_HEADER,
                Some(reply),
            ),
            payload: template.payload().unwrap().to_vec(),
        })
        .collect();
    produce_raw(&app.isolation, &app.isolation.topics.commands, records).await;

    // Each copy of the placing command is decided (the order exists already), and its verdict is
    // written where a command naming no reply partition gets it.
    let verdicts = verdicts_on(&app, &ids).await;
    for verdict in &verdicts {
        assert_eq!(verdict["verdict"], "rejected", "{verdict}");
        assert_eq!(verdict["rejection"]["reason"]["type"], "already_placed", "{verdict}");
    }

    assert_confirms(&app, &order_id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_changelog_records_no_decider_wrote_stop_no_restore_and_quarantine_only_their_aggregate() {
    let isolation = Isolation::new();
    let replica = Replica::new();
    let service = replica.start(&isolation, &[]).await;
    let placed = |name: &'static str| {
        let replica = replica.clone();
        async move {
            let response = replica.place(&json!({"name": name}), None).await;
            assert_eq!(response.status(), 201);
            let body: Value = response.json().await.unwrap();
            let id = body["order_id"].as_str().unwrap().to_owned();
            (id, body["events"][0]["partition"].as_i64().unwrap() as i32)
        }
    };
    let (spoiled, spoiled_partition) = placed("John Doe").await;
    let (intact, _) = placed("Jane Doe").await;

    let foreign = |key, payload: &[u8]| RawRecord {
        partition: Some(spoiled_partition),
        key: Some(key),
        headers: Vec::new(),
        payload: payload.to_vec(),
    };
    let records = vec![
        // The spoiled order's newest state, unreadable: its state is unknown from here on.
        foreign(&spoiled, b"not json"),
        // Records that name no aggregate (a compacted topic refuses a record without a key).
        foreign("not-an-aggregate", b"{\"Live\":{}}"),
        foreign("", b"\x00\x01 garbage"),
    ];
    produce_raw(&isolation, &isolation.topics.decider_state, records).await;
    service.kill();

    // A fresh replica, with an empty store, restores from the changelog and reads past them all.
    let state_dir = isolation.decider_state_dir().join(Uuid::new_v4().to_string());
    let _service = replica
        .start(&isolation, &[("DECIDER_STATE_DIR", state_dir.display().to_string())])
        .await;
    assert_eq!(
        metric(
            &replica.client,
            &replica.base,
            "orderstream_decider_undecodable_events_total"
        )
        .await,
        3
    );
    let confirm = replica
        .post(&format!("/api/v1/orders/{spoiled}/confirm"), None, None)
        .await;
    let problem = assert_problem(confirm, 409, None).await;
    assert_eq!(problem["type"], "/problems/aggregate-quarantined", "{problem}");
    let confirm = replica
        .post(&format!("/api/v1/orders/{intact}/confirm"), None, None)
        .await;
    assert_eq!(confirm.status(), 200, "the intact order restored from the changelog");
    let mut landed_on = Vec::new();
    while !landed_on.contains(&spoiled_partition) {
        assert!(
            landed_on.len() < 30,
            "no new order landed on partition {spoiled_partition}"
        );
        landed_on.push(placed("Jane Doe").await.1);
    }
}

/// Requests the seed purchase through `base`; returns its id and partition.
async fn requested_purchase(client: &reqwest::Client, base: &str) -> (String, i32) {
    let response = client
        .post(format!("{base}/api/v1/purchases"))
        .json(&crate::purchases::seed_purchase())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    let token = ConsistencyToken::decode(answer["consistency_token"].as_str().unwrap()).unwrap();
    let partition = *token.positions().keys().next().unwrap();
    (answer["purchase_id"].as_str().unwrap().to_owned(), partition)
}

#[tokio::test(flavor = "multi_thread")]
async fn unreadable_settlements_ahead_of_a_restarted_reactor_stop_neither_its_scan_nor_its_charges() {
    let isolation = Isolation::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = authorized_client();
    let service = start(&isolation, port);
    wait_ready(&client, &base).await;
    let (first, partition) = requested_purchase(&client, &base).await;
    let events = purchase_events(&isolation, &first, domain::purchase::PURCHASE_AUTHORIZED_V2).await;
    service.kill();

    // Where the restarted reactor resumes, its scan for what is already settled meets
    // settlements whose purchase or refund it cannot read.
    let template = events
        .iter()
        .find(|e| header(e, "ce_type") == Some(domain::purchase::PURCHASE_AUTHORIZED_V2))
        .unwrap();
    let unknown = Uuid::new_v4().to_string();
    let settlement = |event_type: &str, subject: Option<&str>, payload: &[u8]| RawRecord {
        partition: Some(partition),
        key: None,
        headers: with_header(
            with_header(headers_of(template), "ce_type", Some(event_type)),
            "ce_subject",
            subject,
        ),
        payload: payload.to_vec(),
    };
    produce_raw(
        &isolation,
        &isolation.topics.events,
        vec![
            settlement(domain::purchase::PURCHASE_REFUNDED_V1, Some(&first), b"not json"),
            settlement(
                domain::purchase::PURCHASE_REFUNDED_V1,
                Some(&unknown),
                b"{\"refund_id\":\"not a uuid\"}",
            ),
            settlement(domain::purchase::PURCHASE_AUTHORIZED_V2, None, b"{}"),
        ],
    )
    .await;

    let _service = start(&isolation, port);
    wait_ready(&client, &base).await;
    // A purchase after them on the same partition is charged: the reactor read past them.
    let mut tried = 0;
    loop {
        let (purchase_id, landed_on) = requested_purchase(&client, &base).await;
        if landed_on == partition {
            purchase_events(&isolation, &purchase_id, domain::purchase::PURCHASE_AUTHORIZED_V2).await;
            break;
        }
        tried += 1;
        assert!(tried < 30, "no purchase landed on partition {partition}");
    }
    let charges = committed_records(&isolation, &isolation.topics.events)
        .await
        .iter()
        .filter(|e| {
            header(e, "ce_subject") == Some(first.as_str())
                && header(e, "ce_type") == Some(domain::purchase::PURCHASE_AUTHORIZED_V2)
        })
        .count();
    assert_eq!(charges, 1, "the purchase before the restart was charged again");
}
