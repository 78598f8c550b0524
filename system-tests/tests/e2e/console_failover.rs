//! The console while a decider dies: two command-api processes share the commands partitions, one
//! is SIGKILLed, and the console's snapshot moves every partition to the survivor (no partition
//! left shown under the dead one, none without an owner), which then takes orders.

use std::time::Duration;

use serde_json::{json, Value};
use service_kit::auth::OPERATOR;
use service_kit::server::App;
use service_kit::testing::{bearer, bearer_all, free_port, wait_until, ChildService, Isolation};
use tokio::sync::watch;

use crate::helpers::{environment, settings, stopped, wait_ready};

/// How long the group may take to notice the dead member (its session timeout) and move its
/// partitions, with room for a loaded machine.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(90);

/// A command-api process of this test, on a port of its own.
fn command_api(isolation: &Isolation, port: u16) -> ChildService {
    let mut env = isolation.env();
    env.push(("LISTEN_ADDR", format!("127.0.0.1:{port}")));
    ChildService::spawn(&system_tests::release_dir().join("command-api"), &[], &env)
}

/// The deciders the console's snapshot lists: each instance with the partitions it owns.
async fn deciders(operator: &reqwest::Client, queries: &str) -> Option<Vec<(String, Vec<i64>)>> {
    let snapshot: Value = operator
        .get(format!("{queries}/console/api/snapshot"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let members = snapshot["deciders"].as_array()?;
    Some(
        members
            .iter()
            .map(|member| {
                let partitions = member["partitions"]
                    .as_array()
                    .map(|p| p.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                (member["instance"].as_str().unwrap_or_default().to_owned(), partitions)
            })
            .collect(),
    )
}

/// Every partition owned, each by one instance: the instances owning any, sorted.
fn owners_of_all(members: &[(String, Vec<i64>)], partitions: i64) -> Option<Vec<String>> {
    let mut owned: Vec<i64> = members.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    owned.sort_unstable();
    (owned == (0..partitions).collect::<Vec<_>>()).then(|| {
        let mut owners: Vec<String> = members
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(instance, _)| instance.clone())
            .collect();
        owners.sort();
        owners
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decider_killed_leaves_its_partitions_to_the_survivor_on_the_console() {
    let isolation = Isolation::new();
    let partitions = i64::from(isolation.kafka.partitions);
    assert!(partitions >= 2, "two deciders need two partitions to share");
    let pool = isolation.database.pool().unwrap();
    projectors::db::migrate(&pool, &isolation.database.database_schema)
        .await
        .unwrap();
    let environment = environment(&isolation, Duration::from_secs(10));
    let (stop, _) = watch::channel(false);
    let query_api = query_api::Application::build(isolation.settings(&settings(&environment)))
        .await
        .unwrap();
    let queries = format!("http://127.0.0.1:{}", query_api.port());
    let service = tokio::spawn(query_api.run_until(stopped(&stop)));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, bearer(&[OPERATOR]).parse().unwrap());
    let operator = reqwest::Client::builder().default_headers(headers).build().unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, bearer_all().parse().unwrap());
    let client = reqwest::Client::builder().default_headers(headers).build().unwrap();
    wait_ready(&client, &queries).await;

    let (first_port, second_port) = (free_port(), free_port());
    let first = command_api(&isolation, first_port);
    let survivor = command_api(&isolation, second_port);
    let survivor_base = format!("http://127.0.0.1:{second_port}");
    wait_ready(&client, &format!("http://127.0.0.1:{first_port}")).await;
    wait_ready(&client, &survivor_base).await;
    let shared = wait_until("both deciders owning partitions", FAILOVER_DEADLINE, || async {
        let owners = owners_of_all(&deciders(&operator, &queries).await?, partitions)?;
        (owners.len() == 2).then_some(owners)
    })
    .await;

    first.kill();
    let after = wait_until(
        "the survivor owning every partition on the console",
        FAILOVER_DEADLINE,
        || async {
            let members = deciders(&operator, &queries).await?;
            let owners = owners_of_all(&members, partitions)?;
            (owners.len() == 1).then_some(owners)
        },
    )
    .await;
    assert!(
        shared.contains(&after[0]),
        "the survivor is one of {shared:?}, not {after:?}"
    );

    let placed = client
        .post(format!("{survivor_base}/api/v1/orders"))
        .json(&json!({"name": "After the failover", "note": "placed on the survivor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 201, "{:?}", placed.text().await);

    drop(survivor);
    let _ = stop.send(true);
    service.await.unwrap().unwrap();
}
